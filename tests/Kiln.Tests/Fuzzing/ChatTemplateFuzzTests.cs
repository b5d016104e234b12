using System.Text.Json.Nodes;
using CsCheck;
using Kiln.Chat;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Mutated chat templates (the conformance templates with Jinja fragments inserted, spans deleted, swapped or
/// cut off) render, or fail with one line naming the template (or with the message of the template's own
/// raise_exception): no other exception, no crashed process, no hang.
/// </summary>
public sealed class ChatTemplateFuzzTests
{
    private static readonly string[] Fragments =
    [
        "{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".", ",", ":", "~", "*", "**", "//",
        "%", "=", " if ", " else ", " for x in ", " in ", " not ", " is ", " and ", " or ", "{% endif %}", "{% endfor %}", "{% break %}",
        "loop", "loop.index", "messages", "ns", "namespace(", "| tojson", "| trim", "| length", "[::-1]", "[-1]", "\\", "\\u12", "\n",
        "0", "-1", "9223372036854775807", "1e400", "none", "true", "undefined_name", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    ];

    private static readonly string[] Templates =
        Directory.GetFiles(TestPaths.Data("chat-templates", "templates"), "*.jinja").Order().Select(File.ReadAllText).ToArray();

    private static readonly JsonObject Conversation =
        JsonNode.Parse(File.ReadAllText(TestPaths.Data("chat-templates", "cases.json")))!["conversations"]!["tool-calls"]!.AsObject();

    [Fact]
    public void MutatedTemplatesRenderOrFailWithOneLine()
    {
        var rendered = 0;
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var source = Mutate(Templates[random.Next(Templates.Length)], random);
            try
            {
                var template = new ChatTemplate(source, "fuzz.jinja", new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" });
                var tools = new Dictionary<string, object?> { ["tools"] = Conversation["variables"]!["tools"]!.DeepClone() };
                template.Render(Conversation["messages"]!.DeepClone().AsArray(), random.Next(2) == 0, tools);
                Interlocked.Increment(ref rendered);
            }
            catch (KilnException e) when (e.Message.StartsWith("fuzz.jinja: ", StringComparison.Ordinal))
            {
                Assert.True(!e.Message.Contains('\n') && !e.Message.Contains('\r'), $"seed {seed}: multi-line message:\n{e.Message}");
            }
            catch (KilnException e)
            {
                // raise_exception's message is the template's text as it is (the CLI prints it on one line).
                Assert.True(source.Contains("raise_exception"), $"seed {seed}: the message does not name the template: {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed}: {e.GetType().Name} escaped:\n{source}\n{e}");
            }
        }, iter: FuzzOutcome.Scaled(2000));
        Assert.True(rendered > 0, "no mutated template rendered");
    }

    // One to three edits: a fragment inserted or put in place of a span, a span deleted or repeated, the end cut off.
    private static string Mutate(string source, Random random)
    {
        for (var edits = random.Next(1, 4); edits > 0 && source.Length > 0; edits--)
        {
            var at = random.Next(source.Length);
            var length = Math.Min(random.Next(1, 12), source.Length - at);
            var fragment = Fragments[random.Next(Fragments.Length)];
            source = random.Next(5) switch
            {
                0 => source.Insert(at, fragment),
                1 => source.Remove(at, length).Insert(at, fragment),
                2 => source.Remove(at, length),
                3 => source.Insert(at, source.Substring(at, length)),
                _ => source[..at],
            };
        }
        return source;
    }
}
