using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// A Jinja template as Hugging Face renders chat templates (transformers' sandboxed Jinja with trim_blocks
/// and lstrip_blocks, its tojson, raise_exception and strftime_now): the subset of Jinja that chat templates
/// use, with Python's semantics (docs/chat-templates.md lists what is and is not supported). An error in the
/// template is a <see cref="KilnException"/> of one line naming the template, line and column; a call of
/// raise_exception(message) is one whose message is the template's. A parsed template does not change:
/// several threads may render it at once.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly string source;
    private readonly IReadOnlyList<Node> body;

    private JinjaTemplate(string name, string source, IReadOnlyList<Node> body)
    {
        Name = name;
        this.source = source;
        this.body = body;
    }

    /// <summary>What errors call the template, e.g. "model/tokenizer_config.json: chat_template".</summary>
    public string Name { get; }

    /// <summary>Parses <paramref name="source"/>; a syntax error is a <see cref="KilnException"/> naming <paramref name="name"/> and the position.</summary>
    public static JinjaTemplate Parse(string source, string name)
    {
        var text = Lexer.Normalize(source);
        try
        {
            return new JinjaTemplate(name, text, Parser.Parse(Lexer.Tokenize(text)));
        }
        catch (JinjaError e)
        {
            throw Located(name, text, e);
        }
    }

    /// <summary>
    /// Renders the template with <paramref name="variables"/>: strings, booleans, numbers, null, JSON nodes,
    /// and dictionaries and sequences of those. <paramref name="now"/> is the clock of strftime_now (default:
    /// the local time).
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? now = null)
    {
        var scope = new Scope(Globals.CreateScope(now ?? (() => DateTime.Now)));
        foreach (var (key, value) in variables) scope.Set(key, Values.FromClr(value));
        var output = new StringBuilder();
        try
        {
            Renderer.Render(body, scope, output);
        }
        catch (JinjaError e)
        {
            throw Located(Name, source, e);
        }
        catch (TemplateRaisedError e)
        {
            throw new KilnException(e.Message);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new KilnException($"{Name}: the template nests too deeply (recursive macros or values nested in themselves)");
        }
        return output.ToString();
    }

    private static KilnException Located(string name, string text, JinjaError e)
    {
        // A message may quote the template's own text; an error stays one line whatever that text holds.
        var message = KilnException.OneLine(e.Message);
        if (e.Offset is not { } offset) return new KilnException($"{name}: {message}");
        var line = text.AsSpan(0, offset).Count('\n') + 1;
        var lineStart = offset == 0 ? 0 : text.LastIndexOf('\n', offset - 1) + 1;
        return new KilnException($"{name}: line {line}, column {offset - lineStart + 1}: {message}");
    }
}
