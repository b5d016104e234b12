using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// A pattern over the values of a graph, declared as data (after tinygrad's UPat): an op with input
/// patterns, a wildcard, a scalar constant (of one value, or of the values a predicate accepts), or
/// alternatives. Any pattern may capture the value it matches by name; a name used twice must bind the
/// same value. <see cref="Shared"/> marks a subtree that may also be read outside the match (it is
/// checked, kept, and removed later only if dead).
/// </summary>
public abstract record Pattern
{
    /// <summary>The name the matched value is captured under, or null.</summary>
    public string? Capture { get; private init; }

    /// <summary>Whether the matched nodes stay in the graph (they may have readers outside the match).</summary>
    public bool IsShared { get; private init; }

    /// <summary>Conditions on the matched value's type and shape.</summary>
    public ImmutableArray<Func<Value, bool>> ValueChecks { get; private init; } = [];

    public Pattern Named(string name) => this with { Capture = name };

    public Pattern Where(Func<Value, bool> check) => this with { ValueChecks = ValueChecks.Add(check) };

    public Pattern Shared() => this with { IsShared = true };

    /// <summary>Any value, captured by name.</summary>
    public static Pattern Any(string name) => new AnyPattern().Named(name);

    /// <summary>A node of <paramref name="op"/> whose inputs match <paramref name="inputs"/> (both orders for add and mul).</summary>
    public static OpPattern Op(string op, params Pattern[] inputs) => new(op, [.. inputs]);

    /// <summary>A <c>constant</c> node with exactly this value.</summary>
    public static Pattern Constant(double value) => new ConstantPattern(v => v == value);

    /// <summary>Any <c>constant</c> node, captured by name (read it with <see cref="Match.Constant"/>).</summary>
    public static Pattern Constant(string name) => new ConstantPattern(null).Named(name);

    /// <summary>A <c>constant</c> node whose value <paramref name="accepts"/> takes, captured by name (a mask's "very negative" fill).</summary>
    public static Pattern Constant(string name, Func<double, bool> accepts) => new ConstantPattern(accepts).Named(name);

    /// <summary>The first alternative that leads to a whole match.</summary>
    public static Pattern OneOf(params Pattern[] alternatives) => new AlternativesPattern([.. alternatives]);

    /// <summary><paramref name="inner"/>, optionally wrapped in a one-input <paramref name="op"/> (e.g. a cast a cleanup may remove).</summary>
    public static Pattern Optional(string op, Pattern inner) => OneOf(Op(op, inner), inner);
}

public sealed record AnyPattern : Pattern;

/// <summary>A scalar <c>constant</c> node whose value <see cref="Accepts"/> takes (null: any value). Constants are always shared.</summary>
public sealed record ConstantPattern(Func<double, bool>? Accepts) : Pattern;

public sealed record AlternativesPattern(ImmutableArray<Pattern> Alternatives) : Pattern;

public sealed record OpPattern(string OpName, ImmutableArray<Pattern> Inputs) : Pattern
{
    /// <summary>Conditions on the matched node (attributes).</summary>
    public ImmutableArray<Func<Node, bool>> NodeChecks { get; private init; } = [];

    /// <summary>Ops whose two inputs may be matched in either order.</summary>
    public bool IsCommutative => Inputs.Length == 2 && OpName is "add" or "mul";

    public OpPattern When(Func<Node, bool> check) => this with { NodeChecks = NodeChecks.Add(check) };

    /// <summary>Like <see cref="Pattern.Where"/>, typed so that the pattern can still be a rule's root.</summary>
    public new OpPattern Where(Func<Value, bool> check) => (OpPattern)base.Where(check);

    /// <summary>The attribute must equal <paramref name="expected"/>.</summary>
    public OpPattern Attr(string name, AttributeValue expected) =>
        When(n => n.Attributes.TryGetValue(name, out var actual) && actual.Equals(expected));
}
