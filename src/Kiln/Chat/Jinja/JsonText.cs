using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// The tojson filter as transformers defines it: Python's json.dumps(value, ensure_ascii, indent,
/// separators, sort_keys), not Jinja's HTML-safe tojson. Python's spacing: ", " and ": " between items,
/// or "," and ": " with an indent; floats as Python writes them ("1.0").
/// </summary>
internal sealed class JsonText
{
    private readonly string? indent;
    private readonly string itemSeparator;
    private readonly string keySeparator;
    private readonly bool sortKeys;
    private readonly bool ensureAscii;
    private readonly StringBuilder output = new();

    private JsonText(string? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii)
    {
        this.indent = indent;
        this.itemSeparator = itemSeparator;
        this.keySeparator = keySeparator;
        this.sortKeys = sortKeys;
        this.ensureAscii = ensureAscii;
    }

    /// <summary>The tojson filter: tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False).</summary>
    public static string Filter(object? value, Args args)
    {
        args.Allow("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        var indent = args.Get(1, "indent") switch
        {
            null => null,
            string s => s,
            var n when Values.IsInteger(n) => new string(' ', (int)Math.Clamp(Values.ToLong(n), 0, 1000)),
            var other => throw new JinjaError($"tojson(): indent must be an integer or a string, not {Values.TypeName(other)}"),
        };
        var (items, keys) = (indent is null ? ", " : ",", ": ");
        if (args.Get(2, "separators") is { } separators)
        {
            if (separators is not IList<object?> { Count: 2 } pair || pair[0] is not string item || pair[1] is not string key)
                throw new JinjaError("tojson(): separators must be a pair of strings");
            (items, keys) = (item, key);
        }
        var json = new JsonText(indent, items, keys, Values.IsTrue(args.Get(3, "sort_keys", false)), Values.IsTrue(args.Get(0, "ensure_ascii", false)));
        json.Write(value, 0);
        return json.output.ToString();
    }

    private void Write(object? value, int level)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (value)
        {
            case null: output.Append("null"); break;
            case bool b: output.Append(b ? "true" : "false"); break;
            case long n: output.Append(n.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                output.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : ValueText.Float(d));
                break;
            case string s: WriteString(s); break;
            case IList<object?> items: WriteContainer('[', ']', items.Count, level, items.Select(item => (Action)(() => Write(item, level + 1)))); break;
            case OrderedDictionary<string, object?> dict:
                var entries = sortKeys ? dict.OrderBy(e => e.Key, StringComparer.Ordinal) : dict.AsEnumerable();
                WriteContainer('{', '}', dict.Count, level, entries.Select(e => (Action)(() =>
                {
                    WriteString(e.Key);
                    output.Append(keySeparator);
                    Write(e.Value, level + 1);
                })));
                break;
            default: throw new JinjaError($"Object of type {Values.TypeName(value)} is not JSON serializable");
        }
    }

    private void WriteContainer(char open, char close, int count, int level, IEnumerable<Action> writeItems)
    {
        output.Append(open);
        if (count == 0)
        {
            output.Append(close);
            return;
        }
        var first = true;
        foreach (var writeItem in writeItems)
        {
            if (!first) output.Append(itemSeparator);
            first = false;
            NewLine(level + 1);
            writeItem();
        }
        NewLine(level);
        output.Append(close);
    }

    private void NewLine(int level)
    {
        if (indent is null) return;
        output.Append('\n');
        for (var i = 0; i < level; i++) output.Append(indent);
    }

    private void WriteString(string s)
    {
        output.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': output.Append("\\\""); break;
                case '\\': output.Append("\\\\"); break;
                case '\n': output.Append("\\n"); break;
                case '\r': output.Append("\\r"); break;
                case '\t': output.Append("\\t"); break;
                case '\b': output.Append("\\b"); break;
                case '\f': output.Append("\\f"); break;
                // ensure_ascii escapes all but printable ASCII; otherwise only control characters are escaped.
                case < ' ': output.Append($"\\u{(int)c:x4}"); break;
                case > '~' when ensureAscii: output.Append($"\\u{(int)c:x4}"); break;
                default: output.Append(c); break;
            }
        }
        output.Append('"');
    }
}
