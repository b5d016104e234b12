namespace Kiln.Chat.Jinja;

internal enum TokenKind
{
    /// <summary>Template text outside any tag, printed as it is.</summary>
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    /// <summary>A string literal; <see cref="Token.Value"/> is its decoded text.</summary>
    String,
    Integer,
    Float,
    /// <summary>Punctuation and operators: ( ) [ ] { } , . : | = + - * / // % ** ~ == != &lt; &gt; &lt;= &gt;=.</summary>
    Operator,
    End,
}

/// <summary>One token of a template; <see cref="Offset"/> is where it starts, for error messages.</summary>
internal readonly record struct Token(TokenKind Kind, string Value, int Offset)
{
    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;

    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;

    /// <summary>How the token reads in an error message.</summary>
    public string Describe() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableBegin => "'{{'",
        TokenKind.BlockBegin => "'{%'",
        TokenKind.Text => "template text",
        TokenKind.String => "a string",
        _ => $"'{Value}'",
    };
}
