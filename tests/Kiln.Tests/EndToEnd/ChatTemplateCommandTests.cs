using System.Text.Json.Nodes;

namespace Kiln.Tests.EndToEnd;

/// <summary>`kiln chat-template` through the real process: the prompt exactly on stdout, and its errors as one line, exit 2.</summary>
public sealed class ChatTemplateCommandTests : IDisposable
{
    private const string ChatMl =
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Prints_the_default_models_prompt_exactly()
    {
        var messages = Write("messages.json", """[{"role": "user", "content": "Once upon a time"}]""");
        // From an unrelated folder: the default model's template ships with the build output.
        var result = KilnCli.RunIn(dir.Path, "chat-template", "--messages", messages);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("<s>Once upon a time", result.Stdout);
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public void Opens_the_assistants_turn_unless_told_not_to()
    {
        var model = Model(ChatMl);
        var messages = Write("messages.json", """[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ça va ? 😀"}]""");
        const string conversation = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nÇa va ? 😀<|im_end|>\n";

        var result = KilnCli.Run("chat-template", "--model", model, "--messages", messages);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(conversation + "<|im_start|>assistant\n", result.Stdout);

        result = KilnCli.Run("chat-template", "--model", model, "--messages", messages, "--no-generation-prompt");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(conversation, result.Stdout);
    }

    [Fact]
    public void A_bad_messages_file_names_the_file_and_field()
    {
        var malformed = Write("malformed.json", "[{\"role\": \"user\",\n \"content\": }]");
        AssertUserError(KilnCli.Run("chat-template", "--messages", malformed), $"{malformed}: line 2: malformed JSON");

        var wrongShape = Write("shape.json", """[{"role": "user", "content": "a"}, {"role": ["user"], "content": "b"}]""");
        AssertUserError(KilnCli.Run("chat-template", "--messages", wrongShape), $"{wrongShape}: [1].role: expected a string, found Array");

        var missing = dir.File("missing.json");
        AssertUserError(KilnCli.Run("chat-template", "--messages", missing), $"{missing}: file not found");
    }

    [Fact]
    public void The_templates_raise_exception_is_the_error()
    {
        var model = Model(File.ReadAllText(TestPaths.Data("chat-templates", "templates", "mistral.jinja")));
        var messages = Write("messages.json", """[{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hi again"}]""");
        AssertUserError(KilnCli.Run("chat-template", "--model", model, "--messages", messages),
            "kiln: error: Conversation roles must alternate user/assistant/user/assistant/...");
    }

    [Fact]
    public void A_model_without_a_template_is_a_clear_error()
    {
        var messages = Write("messages.json", """[{"role": "user", "content": "Hi"}]""");
        var model = TestPaths.Oracle("llama_gqa");
        AssertUserError(KilnCli.Run("chat-template", "--model", model, "--messages", messages),
            $"kiln: error: {model}/tokenizer_config.json has no chat_template");
    }

    [Fact]
    public void A_template_that_does_not_parse_names_its_file_and_position()
    {
        var model = Model("{{ bos_token }}{% if messages %}");
        var messages = Write("messages.json", """[{"role": "user", "content": "Hi"}]""");
        AssertUserError(KilnCli.Run("chat-template", "--model", model, "--messages", messages),
            $"kiln: error: {model}/tokenizer_config.json: chat_template: line 1, column 19: '{{% if %}}' is not closed");
    }

    [Fact]
    public void Messages_are_required() =>
        AssertUserError(KilnCli.Run("chat-template"), "--messages");

    // A model folder for this command: tokenizer_config.json with a chat template and special tokens.
    private string Model(string template)
    {
        var model = Directory.CreateDirectory(dir.File($"model-{Guid.NewGuid():N}")).FullName;
        var config = new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["chat_template"] = template };
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), config.ToJsonString());
        return model;
    }

    private string Write(string name, string text)
    {
        File.WriteAllText(dir.File(name), text);
        return dir.File(name);
    }

    private static void AssertUserError(CliResult result, string mention)
    {
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Stdout);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{result.Stderr}");
        Assert.StartsWith("kiln: error: ", lines[0]);
        Assert.Contains(mention, lines[0]);
    }
}
