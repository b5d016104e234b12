namespace Kiln.Chat.Jinja;

// The statements of a template: text, {{ }} outputs and {% %} tags, as the parser builds them.

internal abstract record Node(int Offset);

internal sealed record TextNode(string Text, int Offset) : Node(Offset);

/// <summary>{{ value }}</summary>
internal sealed record OutputNode(Expr Value, int Offset) : Node(Offset);

/// <summary>{% if %} with its {% elif %} branches, in order, and the {% else %} body (empty when absent).</summary>
internal sealed record IfNode(IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node> Else, int Offset) : Node(Offset);

/// <summary>{% for target in iterable if filter %} body {% else %} (run when nothing was iterated) {% endfor %}</summary>
internal sealed record ForNode(Target Target, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else, int Offset) : Node(Offset);

/// <summary>{% set target = value %}</summary>
internal sealed record SetNode(Target Target, Expr Value, int Offset) : Node(Offset);

/// <summary>{% set target %} body {% endset %}: the target gets the rendered body.</summary>
internal sealed record SetBlockNode(Target Target, IReadOnlyList<Node> Body, int Offset) : Node(Offset);

/// <summary>{% macro name(parameters) %} body {% endmacro %}</summary>
internal sealed record MacroNode(string Name, IReadOnlyList<Parameter> Parameters, IReadOnlyList<Node> Body, int Offset) : Node(Offset);

internal sealed record Parameter(string Name, Expr? Default);

internal sealed record BreakNode(int Offset) : Node(Offset);

internal sealed record ContinueNode(int Offset) : Node(Offset);

/// <summary>What a set or a for assigns to.</summary>
internal abstract record Target(int Offset);

internal sealed record NameTarget(string Name, int Offset) : Target(Offset);

/// <summary>ns.attribute, for a namespace() object: the one way a loop body changes a value outside it.</summary>
internal sealed record AttributeTarget(string Name, string Attribute, int Offset) : Target(Offset);

/// <summary>a, b: unpacks a sequence of that length.</summary>
internal sealed record TupleTarget(IReadOnlyList<Target> Items, int Offset) : Target(Offset);
