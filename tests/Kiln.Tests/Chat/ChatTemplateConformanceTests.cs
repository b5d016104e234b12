using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.Chat;

namespace Kiln.Tests.Chat;

/// <summary>
/// Kiln's rendering of the templates of tests/data/chat-templates (modelled on Llama 2, 3 and 3.1, Mistral,
/// Qwen 2.5 and 3, Phi-3, Gemma, Zephyr, DeepSeek, Command R, Granite), each with several conversations and
/// add_generation_prompt true and false, against the outputs of Hugging Face's own @huggingface/jinja
/// (expected/, written by render.mjs; check-python.py confirms that Python's Jinja2 as transformers sets it
/// up gives the same).
/// </summary>
public sealed class ChatTemplateConformanceTests
{
    private static readonly string Folder = TestPaths.Data("chat-templates");

    private static readonly JsonObject Cases = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")))!.AsObject();

    public static TheoryData<string> TemplateNames => new(Cases["templates"]!.AsObject().Select(t => t.Key));

    [Theory]
    [MemberData(nameof(TemplateNames))]
    public void Renders_as_huggingface_jinja_does(string name)
    {
        var tokens = new Dictionary<string, string>
        {
            ["bos_token"] = Cases["bos_token"]!.GetValue<string>(),
            ["eos_token"] = Cases["eos_token"]!.GetValue<string>(),
        };
        var template = new ChatTemplate(File.ReadAllText(Path.Combine(Folder, "templates", $"{name}.jinja")), name, tokens);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "expected", $"{name}.json")))!.AsArray();
        Assert.Equal(Cases["templates"]![name]!.AsArray().Count * 2, expected.Count);

        var differences = new List<string>();
        foreach (var result in expected)
        {
            var conversation = result!["conversation"]!.GetValue<string>();
            var addGenerationPrompt = result["add_generation_prompt"]!.GetValue<bool>();
            var input = Cases["conversations"]![conversation]!;
            var variables = input["variables"]?.AsObject().ToDictionary(v => v.Key, v => (object?)v.Value?.DeepClone());
            string actual;
            try
            {
                actual = template.Render(input["messages"]!.DeepClone().AsArray(), addGenerationPrompt, variables);
            }
            catch (KilnException e)
            {
                actual = $"raised: {e.Message}";
            }
            var want = result["output"] is { } output ? output.GetValue<string>() : $"raised: {result["raised"]!.GetValue<string>()}";
            if (actual != want) differences.Add($"{conversation}, add_generation_prompt={addGenerationPrompt}:\n{want}\n---- Kiln:\n{actual}");
        }
        Assert.Empty(differences);
    }

    /// <summary>
    /// Where node and the pinned @huggingface/jinja are installed (npm ci in tests/data/chat-templates), the
    /// committed expected outputs are still what it renders now; elsewhere there is nothing to run.
    /// </summary>
    [Fact]
    public async Task Expected_outputs_are_what_huggingface_jinja_renders_now()
    {
        if (!Directory.Exists(Path.Combine(Folder, "node_modules", "@huggingface", "jinja"))) return;
        var start = new ProcessStartInfo("node", ["render.mjs", "--check"])
        {
            WorkingDirectory = Folder,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var node = Process.Start(start)!;
        var errors = node.StandardError.ReadToEndAsync();
        await node.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await node.WaitForExitAsync(timeout.Token);
        Assert.True(node.ExitCode == 0, await errors);
    }
}
