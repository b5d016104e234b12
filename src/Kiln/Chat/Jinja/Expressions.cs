namespace Kiln.Chat.Jinja;

// The expressions of a template, as the parser builds them. Offset is where each starts (for a binary
// operator, the operator; for a filter, test or attribute, its name), for error messages.

internal abstract record Expr(int Offset);

/// <summary>A string, number, true, false or none written in the template.</summary>
internal sealed record Literal(object? Value, int Offset) : Expr(Offset);

internal sealed record Name(string Identifier, int Offset) : Expr(Offset);

internal sealed record ListExpr(IReadOnlyList<Expr> Items, int Offset) : Expr(Offset);

internal sealed record TupleExpr(IReadOnlyList<Expr> Items, int Offset) : Expr(Offset);

internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Entries, int Offset) : Expr(Offset);

/// <summary>target.attribute</summary>
internal sealed record GetAttr(Expr Target, string Attribute, int Offset) : Expr(Offset);

/// <summary>target[key]</summary>
internal sealed record GetItem(Expr Target, Expr Key, int Offset) : Expr(Offset);

/// <summary>target[start:stop:step], any part omitted.</summary>
internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Offset) : Expr(Offset);

/// <summary>The arguments written in a call, a filter or a test: f(a, b, key=c).</summary>
internal sealed record ArgumentList(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Keywords)
{
    public static readonly ArgumentList Empty = new([], []);
}

internal sealed record Call(Expr Callee, ArgumentList Arguments, int Offset) : Expr(Offset);

/// <summary>target | filter(arguments)</summary>
internal sealed record FilterExpr(Expr Target, string Filter, ArgumentList Arguments, int Offset) : Expr(Offset);

/// <summary>target is test(arguments); "is not" is a <see cref="Unary"/> not around it.</summary>
internal sealed record TestExpr(Expr Target, string Test, ArgumentList Arguments, int Offset) : Expr(Offset);

/// <summary>not x, -x, +x</summary>
internal sealed record Unary(string Operator, Expr Operand, int Offset) : Expr(Offset);

/// <summary>Arithmetic (+ - * / // % **), concatenation (~), and the short-circuit and / or.</summary>
internal sealed record Binary(string Operator, Expr Left, Expr Right, int Offset) : Expr(Offset);

/// <summary>A comparison chain, a &lt; b &lt;= c, with ==, !=, &lt;, &gt;, &lt;=, &gt;=, in and "not in".</summary>
internal sealed record Compare(Expr First, IReadOnlyList<(string Operator, Expr Operand)> Rest, int Offset) : Expr(Offset);

/// <summary>then if condition else otherwise; without else it is undefined when the condition is false.</summary>
internal sealed record Conditional(Expr Condition, Expr Then, Expr? Else, int Offset) : Expr(Offset);
