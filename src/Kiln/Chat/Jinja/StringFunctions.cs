using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// Python's string operations, which templates reach as methods (s.strip()) and filters (s | trim). Python
/// counts and indexes a string by code point, .NET by UTF-16 unit; the two agree unless the string holds a
/// character beyond U+FFFF, which is then handled as one character.
/// </summary>
internal static class StringFunctions
{
    private static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    public static long Length(string s) => HasSurrogates(s) ? s.EnumerateRunes().Count() : s.Length;

    /// <summary>The characters of <paramref name="s"/>, each a string.</summary>
    public static List<object?> Characters(string s) => HasSurrogates(s)
        ? s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList()
        : s.Select(c => (object?)c.ToString()).ToList();

    /// <summary>str.strip(chars), lstrip and rstrip: whitespace when <paramref name="chars"/> is null.</summary>
    public static string Strip(string s, string? chars, bool start = true, bool end = true)
    {
        var set = chars?.ToCharArray();
        return (start, end) switch
        {
            (true, true) => set is null ? s.Trim() : s.Trim(set),
            (true, false) => set is null ? s.TrimStart() : s.TrimStart(set),
            _ => set is null ? s.TrimEnd() : s.TrimEnd(set),
        };
    }

    /// <summary>
    /// str.split(sep, maxsplit): without a separator, on runs of whitespace with none at either end; with one,
    /// on each occurrence. At most <paramref name="maxSplit"/> splits when it is not negative.
    /// </summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        if (separator is not null)
        {
            if (separator.Length == 0) throw new JinjaError("split(): empty separator");
            var parts = maxSplit < 0 ? s.Split(separator) : s.Split(separator, (int)Math.Min(maxSplit + 1, int.MaxValue));
            return parts.Cast<object?>().ToList();
        }
        var result = new List<object?>();
        var i = 0;
        while (true)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) return result;
            if (maxSplit >= 0 && result.Count == maxSplit)
            {
                // The rest is one piece, trailing whitespace included, as in Python.
                result.Add(s[i..]);
                return result;
            }
            var start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
            result.Add(s[start..i]);
        }
    }

    /// <summary>str.replace(old, new, count): every occurrence when <paramref name="count"/> is negative.</summary>
    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0 && old.Length > 0) return s.Replace(old, replacement, StringComparison.Ordinal);
        var result = new StringBuilder();
        var done = 0L;
        if (old.Length == 0)
        {
            // Python puts the replacement before each character and at the end.
            foreach (var c in Characters(s))
            {
                if (count < 0 || done < count) { result.Append(replacement); done++; }
                result.Append((string)c!);
            }
            if (count < 0 || done < count) result.Append(replacement);
            return result.ToString();
        }
        var from = 0;
        while (count < 0 || done < count)
        {
            var at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            result.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
            done++;
        }
        return result.Append(s, from, s.Length - from).ToString();
    }

    /// <summary>str.title(): a letter after a letter is lowered, any other letter raised ("they'Re").</summary>
    public static string PythonTitle(string s)
    {
        var result = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            result.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsUpper(c) || char.IsLower(c);
        }
        return result.ToString();
    }

    /// <summary>
    /// Jinja's title filter: a word starts after whitespace, '-', '(', '{', '[' or '&lt;'; its first letter is
    /// raised and the rest lowered ("they're" stays "They're", unlike str.title()).
    /// </summary>
    public static string JinjaTitle(string s)
    {
        var result = new StringBuilder(s.Length);
        var wordStart = true;
        foreach (var c in s)
        {
            if (char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<')
            {
                result.Append(c);
                wordStart = true;
                continue;
            }
            result.Append(wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = false;
        }
        return result.ToString();
    }

    /// <summary>str.capitalize(): the first character raised, the rest lowered.</summary>
    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
}
