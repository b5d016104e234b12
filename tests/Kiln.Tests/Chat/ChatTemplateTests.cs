using System.Text.Json.Nodes;
using Kiln.Chat;
using Kiln.Runtime;

namespace Kiln.Tests.Chat;

/// <summary>A model folder's chat template: where it is read from, the variables it gets, and its errors.</summary>
public sealed class ChatTemplateTests : IDisposable
{
    private static readonly ChatMessage[] NoMessages = [];

    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void The_default_model_renders_bos_then_the_messages_one_per_line()
    {
        var template = ChatTemplate.Load(TestPaths.DefaultModel);
        Assert.Equal($"{TestPaths.DefaultModel}/tokenizer_config.json: chat_template", template.Name);
        Assert.Equal("<s>Once upon a time", template.Render([new ChatMessage("user", "Once upon a time")]));
        ChatMessage[] story = [new("system", " A story. "), new("user", "Lily had a cat."), new("assistant", "The cat was red.")];
        Assert.Equal("<s>A story.\nLily had a cat.\nThe cat was red.", template.Render(story));
        // Nothing opens an assistant's turn: the model continues the text.
        Assert.Equal(template.Render(story), template.Render(story, addGenerationPrompt: false));
    }

    [Fact]
    public void The_default_models_prompt_encodes_to_the_reference_ids_without_a_second_bos()
    {
        var template = ChatTemplate.Load(TestPaths.DefaultModel);
        using var tokenizer = Tokenizer.Load(TestPaths.DefaultModel);
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "expected.json")))!["cases"]!.AsArray();
        foreach (var reference in cases)
        {
            var prompt = template.Render([new ChatMessage("user", reference!["prompt"]!.GetValue<string>())]);
            // Tokenizer.Encode adds BOS itself (add_bos_token), so the template's own "<s>" comes second.
            var ids = tokenizer.Encode(prompt);
            Assert.Equal(tokenizer.BosId, ids[0]);
            Assert.Equal(reference["input_ids"]!.AsArray().Select(i => i!.GetValue<int>()), ids[1..]);
        }
    }

    [Fact]
    public void The_special_tokens_come_from_tokenizer_config_as_strings_or_content_objects()
    {
        WriteConfig(new JsonObject
        {
            ["bos_token"] = new JsonObject { ["content"] = "<|begin|>", ["lstrip"] = false },
            ["eos_token"] = "<|end|>",
            ["pad_token"] = null,
            ["chat_template"] = "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ unk_token is defined }}",
        });
        var template = ChatTemplate.Load(dir.Path);
        Assert.Equal("<|begin|>|<|end|>|False|False", template.Render(NoMessages));
        Assert.Equal(new Dictionary<string, string> { ["bos_token"] = "<|begin|>", ["eos_token"] = "<|end|>" }, template.SpecialTokens);
    }

    [Fact]
    public void Special_tokens_map_json_overrides_the_config_as_in_transformers()
    {
        WriteConfig(new JsonObject { ["bos_token"] = "<s>", ["chat_template"] = "{{ bos_token }}|{{ eos_token }}|{{ unk_token }}" });
        File.WriteAllText(dir.File("special_tokens_map.json"), """{"bos_token": {"content": "<|bos|>"}, "eos_token": "<|eos|>"}""");
        Assert.Equal("<|bos|>|<|eos|>|", ChatTemplate.Load(dir.Path).Render(NoMessages));
    }

    [Fact]
    public void The_list_form_uses_the_template_named_default()
    {
        WriteConfig(new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools" },
                new JsonObject { ["name"] = "default", ["template"] = "{{ messages | length }} messages" }),
        });
        Assert.Equal("1 messages", ChatTemplate.Load(dir.Path).Render([new ChatMessage("user", "hi")]));
    }

    [Fact]
    public void A_chat_template_jinja_file_replaces_the_configs_template_as_in_transformers()
    {
        WriteConfig(new JsonObject { ["bos_token"] = "<s>", ["chat_template"] = "from the config" });
        File.WriteAllText(dir.File("chat_template.jinja"), "{{ bos_token }}from the file\n");
        var template = ChatTemplate.Load(dir.Path);
        Assert.Equal(dir.File("chat_template.jinja"), template.Name);
        Assert.Equal("<s>from the file", template.Render(NoMessages));
    }

    [Fact]
    public void A_model_without_a_template_is_a_clear_error()
    {
        WriteConfig(new JsonObject { ["bos_token"] = "<s>" });
        var error = Assert.Throws<KilnException>(() => ChatTemplate.Load(dir.Path));
        Assert.Equal($"{dir.Path}/tokenizer_config.json has no chat_template (and there is no chat_template.jinja beside it)", error.Message);
        Assert.Contains("has no chat_template", Assert.Throws<KilnException>(() => ChatTemplate.Load(TestPaths.Oracle("llama_gqa"))).Message);
    }

    [Theory]
    [InlineData("""{"chat_template": 7}""", "tokenizer_config.json: chat_template: expected a string or a list of {\"name\", \"template\"} objects")]
    [InlineData("""{"chat_template": [{"name": "tool_use", "template": "x"}]}""", "tokenizer_config.json: chat_template: no template named \"default\" (the list has \"tool_use\")")]
    [InlineData("""{"chat_template": [{"name": "default"}]}""", "tokenizer_config.json: chat_template[0]: expected an object with string \"name\" and \"template\"")]
    [InlineData("""{"chat_template": "{% for m in messages %}"}""", "tokenizer_config.json: chat_template: line 1, column 4: '{% for %}' is not closed (expected '{% else %}' or '{% endfor %}')")]
    [InlineData("""{"eos_token": 5, "chat_template": "x"}""", "tokenizer_config.json: eos_token: expected a string, an object with \"content\", or null")]
    [InlineData("""{"chat_template": "x", "chat_template": "y"}""", "tokenizer_config.json: chat_template: duplicate key")]
    public void A_bad_template_entry_is_an_error_naming_the_file_and_field(string config, string message)
    {
        File.WriteAllText(dir.File("tokenizer_config.json"), config);
        Assert.Equal($"{dir.Path}/{message}", Assert.Throws<KilnException>(() => ChatTemplate.Load(dir.Path)).Message);
    }

    [Fact]
    public void A_chat_template_jinja_that_is_not_utf8_is_refused()
    {
        File.WriteAllBytes(dir.File("chat_template.jinja"), [(byte)'a', 0xFF, (byte)'b']);
        Assert.Equal($"{dir.File("chat_template.jinja")}: not valid UTF-8", Assert.Throws<KilnException>(() => ChatTemplate.Load(dir.Path)).Message);
    }

    [Fact]
    public void A_missing_folder_is_named()
    {
        var missing = dir.File("no-such-model");
        Assert.Equal($"{missing}: model folder not found", Assert.Throws<KilnException>(() => ChatTemplate.Load(missing)).Message);
    }

    [Fact]
    public void Tools_and_documents_are_none_unless_given_and_variables_are_passed_on()
    {
        var template = new ChatTemplate(
            "{{ tools is none }} {{ documents is none }} {{ tools | length if tools }} {{ enable_thinking }} {{ add_generation_prompt }}", "t");
        Assert.Equal("True True  True False", template.Render(NoMessages, addGenerationPrompt: false,
            new Dictionary<string, object?> { ["enable_thinking"] = true }));
        var tools = JsonNode.Parse("""[{"type": "function", "function": {"name": "f"}}]""");
        Assert.Equal("False True 1  True", template.Render(NoMessages, variables: new Dictionary<string, object?> { ["tools"] = tools }));
        Assert.Throws<ArgumentException>(() => template.Render(NoMessages, variables: new Dictionary<string, object?> { ["messages"] = null }));
    }

    [Fact]
    public void Messages_as_json_keep_their_other_fields()
    {
        var template = new ChatTemplate("{% for m in messages %}{{ m.role }}:{{ m.content }}:{{ m.tool_calls | tojson if m.tool_calls is defined }};{% endfor %}", "t");
        var messages = JsonNode.Parse("""
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1.5}}}]}]
            """)!.AsArray();
        Assert.Equal("user:hi:;assistant:None:[{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}];", template.Render(messages));
    }

    [Fact]
    public void Raise_exception_is_an_error_with_the_templates_message()
    {
        var template = new ChatTemplate(File.ReadAllText(TestPaths.Data("chat-templates", "templates", "gemma.jinja")), "gemma");
        var error = Assert.Throws<KilnException>(() => template.Render([new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi")]));
        Assert.Equal("System role not supported", error.Message);
    }

    private void WriteConfig(JsonObject config) => File.WriteAllText(dir.File("tokenizer_config.json"), config.ToJsonString());
}
