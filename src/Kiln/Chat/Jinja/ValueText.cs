using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// How values print: Python's str() for {{ }} and ~, and repr() for the items of a printed list or dict
/// ({{ ['a', 1] }} prints "['a', 1]"). Undefined prints as nothing, None as "None", True as "True".
/// </summary>
internal static class ValueText
{
    public static string Str(object? value) => value switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long n => n.ToString(CultureInfo.InvariantCulture),
        double d => Float(d),
        string s => s,
        _ => Repr(value),
    };

    public static string Repr(object? value)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        return value switch
        {
            string s => QuoteString(s),
            object?[] tuple => tuple.Length == 1 ? $"({Repr(tuple[0])},)" : $"({string.Join(", ", tuple.Select(Repr))})",
            IList<object?> list => $"[{string.Join(", ", list.Select(Repr))}]",
            OrderedDictionary<string, object?> dict => $"{{{string.Join(", ", dict.Select(e => $"{QuoteString(e.Key)}: {Repr(e.Value)}"))}}}",
            Undefined => "Undefined",
            Namespace ns => $"<Namespace {Repr(ns.Attributes)}>",
            LoopContext => "<LoopContext>",
            TemplateFunction f => $"<function {f.Name}>",
            _ => Str(value),
        };
    }

    /// <summary>
    /// Python's repr of a float: the shortest digits that read back the same, in positional notation when
    /// the exponent is from -4 to 15 (always with a fraction: "1.0"), else scientific ("1e+16", "1.5e-05").
    /// </summary>
    public static string Float(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // "R" gives the shortest round-trip digits, as "1.5", "1E+16" or "1.2345E-05".
        var text = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var e = text.IndexOf('E');
        var mantissa = e < 0 ? text : text[..e];
        var exponent = e < 0 ? 0 : int.Parse(text[(e + 1)..], CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.');
        var digits = point < 0 ? mantissa : mantissa.Remove(point, 1);
        exponent += (point < 0 ? mantissa.Length : point) - 1;
        // Leading zeros (0.0001 -> "00001") move the exponent; trailing ones carry nothing.
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        exponent -= leading;
        var sign = d < 0 ? "-" : "";
        if (exponent is < -4 or >= 16)
        {
            var fraction = digits.Length > 1 ? "." + digits[1..] : "";
            return $"{sign}{digits[0]}{fraction}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
        }
        if (exponent < 0) return $"{sign}0.{new string('0', -exponent - 1)}{digits}";
        if (digits.Length <= exponent + 1) return $"{sign}{digits}{new string('0', exponent + 1 - digits.Length)}.0";
        return $"{sign}{digits[..(exponent + 1)]}.{digits[(exponent + 1)..]}";
    }

    // Python's repr of a str: single quotes unless the text has one and no double quote; escapes for
    // backslashes, the quote, and characters that do not print.
    private static string QuoteString(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var result = new StringBuilder().Append(quote);
        foreach (var rune in s.EnumerateRunes())
        {
            var c = rune.Value;
            if (c == quote || c == '\\') result.Append('\\').Append((char)c);
            else if (c == '\n') result.Append("\\n");
            else if (c == '\r') result.Append("\\r");
            else if (c == '\t') result.Append("\\t");
            else if (Printable(rune)) result.Append(rune.ToString());
            else if (c <= 0xff) result.Append($"\\x{c:x2}");
            else if (c <= 0xffff) result.Append($"\\u{c:x4}");
            else result.Append($"\\U{c:x8}");
        }
        return result.Append(quote).ToString();
    }

    // str.isprintable(): not a control, format, surrogate, private-use, unassigned or separator character,
    // except the space.
    private static bool Printable(Rune rune) => rune.Value == ' ' || Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
            or UnicodeCategory.SpaceSeparator => false,
        _ => true,
    };
}
