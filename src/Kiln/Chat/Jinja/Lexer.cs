using System.Globalization;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// Splits a template into text and the tokens inside its {{ }} and {% %} tags. Whitespace is handled as
/// transformers configures Jinja: trim_blocks (the first newline after a block tag or comment is dropped),
/// lstrip_blocks (spaces and tabs between the start of a line and a block tag or comment are dropped), a "-"
/// inside a delimiter strips all whitespace on its side ({%- -%} {{- -}} {#- -#}), and a "+" keeps it
/// ({%+ +%}). Comments produce no token.
/// </summary>
internal sealed class Lexer
{
    // Longest first, so that "//" is not read as two "/".
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    private readonly string source;
    private readonly List<Token> tokens = [];
    private int pos;

    private Lexer(string source) => this.source = source;

    /// <summary>
    /// The text Jinja actually reads: every line break becomes "\n", and one newline at the very end is
    /// dropped (Jinja's keep_trailing_newline=False). Offsets in errors refer to this text.
    /// </summary>
    public static string Normalize(string source)
    {
        var text = source.Replace("\r\n", "\n").Replace('\r', '\n');
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    /// <summary>The tokens of a <see cref="Normalize"/>d template, ending with <see cref="TokenKind.End"/>.</summary>
    public static List<Token> Tokenize(string source)
    {
        var lexer = new Lexer(source);
        lexer.Run();
        lexer.tokens.Add(new Token(TokenKind.End, "", source.Length));
        return lexer.tokens;
    }

    private void Run()
    {
        // Whether the next text starts a line, for lstrip_blocks: true at the start of the template and after
        // a tag whose end swallowed a newline.
        var lineStart = true;
        while (pos < source.Length)
        {
            var tagStart = FindTagStart(pos);
            var text = source[pos..tagStart];
            if (tagStart == source.Length)
            {
                AddText(text, pos);
                return;
            }
            var kind = source[tagStart + 1];
            var marker = tagStart + 2 < source.Length ? source[tagStart + 2] : '\0';
            // "+" is a marker only for block tags and comments; "{{+x" is a unary plus.
            var hasMarker = marker == '-' || (marker == '+' && kind != '{');
            if (marker == '-') text = text.TrimEnd();
            else if (!hasMarker && kind != '{') text = StripIndent(text, lineStart);
            AddText(text, pos);
            pos = tagStart + 2 + (hasMarker ? 1 : 0);
            lineStart = kind == '#' ? SkipComment(tagStart) : LexTag(block: kind == '%', tagStart);
        }
    }

    // The next "{{", "{%" or "{#" at or after from, or the end of the template.
    private int FindTagStart(int from)
    {
        while (true)
        {
            var brace = source.IndexOf('{', from);
            if (brace < 0 || brace + 1 >= source.Length) return source.Length;
            if (source[brace + 1] is '{' or '%' or '#') return brace;
            from = brace + 1;
        }
    }

    // lstrip_blocks: drops the spaces and tabs of the text's last line when nothing else is on it.
    private static string StripIndent(string text, bool lineStart)
    {
        var lineBegin = text.LastIndexOf('\n') + 1;
        if (lineBegin == 0 && !lineStart) return text;
        var indent = text.AsSpan(lineBegin);
        return indent.Length > 0 && indent.IsWhiteSpace() ? text[..lineBegin] : text;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, offset));
    }

    // Skips a comment's body and end; returns whether what it consumed ended a line.
    private bool SkipComment(int tagStart)
    {
        var end = source.IndexOf("#}", pos, StringComparison.Ordinal);
        if (end < 0) throw new JinjaError("the comment is not closed (no '#}')", tagStart);
        var strip = end > pos && source[end - 1] == '-';
        pos = end + 2;
        return AfterTagEnd(strip, trimNewline: true);
    }

    // Reads the tokens of one {{ }} or {% %} tag through its end delimiter; returns whether that end
    // swallowed a newline.
    private bool LexTag(bool block, int tagStart)
    {
        tokens.Add(new Token(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", tagStart));
        // Open brackets: an end delimiter inside them (a dict literal's "}}") is not the end of the tag.
        var brackets = new Stack<Token>();
        while (true)
        {
            while (pos < source.Length && char.IsWhiteSpace(source[pos])) pos++;
            if (pos >= source.Length)
                throw new JinjaError(brackets.Count > 0 ? $"'{brackets.Peek().Value}' is not closed" : $"the tag is not closed (no '{(block ? "%}" : "}}")}')",
                    brackets.Count > 0 ? brackets.Peek().Offset : tagStart);
            if (brackets.Count == 0 && TryTagEnd(block, out var endsLine)) return endsLine;
            var token = NextToken();
            tokens.Add(token);
            if (token.Kind != TokenKind.Operator) continue;
            if (token.Value is "(" or "[" or "{") brackets.Push(token);
            else if (token.Value is ")" or "]" or "}")
            {
                if (brackets.Count == 0) throw new JinjaError($"unexpected '{token.Value}'", token.Offset);
                var open = brackets.Pop();
                var expected = open.Value switch { "(" => ")", "[" => "]", _ => "}" };
                if (token.Value != expected) throw new JinjaError($"unexpected '{token.Value}'; '{open.Value}' needs '{expected}'", token.Offset);
            }
        }
    }

    private bool TryTagEnd(bool block, out bool endsLine)
    {
        var end = block ? "%}" : "}}";
        var offset = pos;
        var strip = false;
        var keep = false;
        if (Follows("-" + end)) strip = true;
        else if (block && Follows("+" + end)) keep = true;
        else if (!Follows(end))
        {
            endsLine = false;
            return false;
        }
        pos += end.Length + (strip || keep ? 1 : 0);
        tokens.Add(new Token(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, end, offset));
        endsLine = AfterTagEnd(strip, trimNewline: block && !keep);
        return true;
    }

    // After a tag's end: "-" strips all following whitespace, trim_blocks one newline. Returns whether the
    // last character consumed was a newline (the next text then starts a line).
    private bool AfterTagEnd(bool strip, bool trimNewline)
    {
        var start = pos;
        if (strip)
            while (pos < source.Length && char.IsWhiteSpace(source[pos])) pos++;
        else if (trimNewline && pos < source.Length && source[pos] == '\n')
            pos++;
        return pos > start && source[pos - 1] == '\n';
    }

    private bool Follows(string text) => string.CompareOrdinal(source, pos, text, 0, text.Length) == 0;

    private Token NextToken()
    {
        var start = pos;
        var c = source[pos];
        if (char.IsLetter(c) || c == '_')
        {
            while (pos < source.Length && (char.IsLetterOrDigit(source[pos]) || source[pos] == '_')) pos++;
            return new Token(TokenKind.Name, source[start..pos], start);
        }
        if (char.IsAsciiDigit(c)) return Number();
        if (c is '\'' or '"') return String();
        foreach (var op in Operators)
        {
            if (Follows(op))
            {
                pos += op.Length;
                return new Token(TokenKind.Operator, op, start);
            }
        }
        throw new JinjaError($"unexpected character '{c}'", start);
    }

    // 42, 1_000, 3.14, 1e-5. After a "." only digits are read, so that messages.0.content is two lookups.
    private Token Number()
    {
        var start = pos;
        Digits();
        var afterDot = tokens.Count > 0 && tokens[^1].IsOperator(".");
        var isFloat = false;
        if (!afterDot && pos + 1 < source.Length && source[pos] == '.' && char.IsAsciiDigit(source[pos + 1]))
        {
            pos++;
            Digits();
            isFloat = true;
        }
        if (!afterDot && pos < source.Length && source[pos] is 'e' or 'E')
        {
            var exponent = pos + 1;
            if (exponent < source.Length && source[exponent] is '+' or '-') exponent++;
            if (exponent < source.Length && char.IsAsciiDigit(source[exponent]))
            {
                pos = exponent;
                Digits();
                isFloat = true;
            }
        }
        return new Token(isFloat ? TokenKind.Float : TokenKind.Integer, source[start..pos].Replace("_", ""), start);
    }

    private void Digits()
    {
        while (pos < source.Length && (char.IsAsciiDigit(source[pos]) || (source[pos] == '_' && pos + 1 < source.Length && char.IsAsciiDigit(source[pos + 1])))) pos++;
    }

    // A quoted string with Python's escapes (\n, \t, \\, \', \xhh, \uhhhh, ...); an unknown escape stays as written.
    private Token String()
    {
        var start = pos;
        var quote = source[pos++];
        var text = new StringBuilder();
        while (true)
        {
            if (pos >= source.Length) throw new JinjaError("the string is not closed", start);
            var c = source[pos++];
            if (c == quote) return new Token(TokenKind.String, text.ToString(), start);
            if (c != '\\' || pos >= source.Length)
            {
                text.Append(c);
                continue;
            }
            var escape = source[pos++];
            switch (escape)
            {
                case '\n': break;
                case '\\' or '\'' or '"': text.Append(escape); break;
                case 'n': text.Append('\n'); break;
                case 't': text.Append('\t'); break;
                case 'r': text.Append('\r'); break;
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case 'v': text.Append('\v'); break;
                case 'a': text.Append('\a'); break;
                case 'x': text.Append(HexEscape(2, start)); break;
                case 'u': text.Append(HexEscape(4, start)); break;
                case 'U': text.Append(HexEscape(8, start)); break;
                case >= '0' and <= '7':
                    var octal = escape - '0';
                    for (var i = 0; i < 2 && pos < source.Length && source[pos] is >= '0' and <= '7'; i++) octal = octal * 8 + (source[pos++] - '0');
                    text.Append((char)octal);
                    break;
                default: text.Append('\\').Append(escape); break;
            }
        }
    }

    private string HexEscape(int digits, int stringStart)
    {
        if (pos + digits > source.Length || !int.TryParse(source.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code)
            || !Rune.IsValid(code))
            throw new JinjaError($"the string has a bad \\{source[pos - 1]} escape", stringStart);
        pos += digits;
        return char.ConvertFromUtf32(code);
    }
}
