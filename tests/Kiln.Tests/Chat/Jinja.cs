using System.Text.Json.Nodes;
using Kiln.Chat.Jinja;

namespace Kiln.Tests.Chat;

/// <summary>
/// Renders templates for the interpreter's tests with a few variables any test may use. The expected
/// outputs in those tests are Python's Jinja2 3.1's, configured as transformers configures it.
/// </summary>
internal static class Jinja
{
    public static string Render(string source) => JinjaTemplate.Parse(source, "test").Render(Variables());

    /// <summary>The one-line message of the <see cref="KilnException"/> that parsing or rendering throws.</summary>
    public static string Error(string source) => Assert.Throws<KilnException>(() => Render(source)).Message;

    // Built for each render: a JsonNode is not safe to read from tests running at the same time.
    private static Dictionary<string, object?> Variables() => new()
    {
        ["messages"] = JsonNode.Parse("""
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
             {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
            """),
        ["d"] = JsonNode.Parse("""{"a": 1, "b": [1, 2]}"""),
        ["s"] = "hello",
        ["n"] = 3,
        ["items"] = new[] { 3, 1, 2 },
        ["empty"] = Array.Empty<object?>(),
        ["nothing"] = null,
    };
}
