using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// A rewrite declared as data: a pattern anchored at its root op and a builder that receives the
/// captures and returns the replacement of the root's value, then one replacement for each capture
/// named in <see cref="AlsoReplaces"/>, then one for each of the <see cref="Siblings"/>. The builder
/// reads only values that stay (wildcard captures, shared subtrees); it may return null to decline,
/// and what it emitted is then removed. It never edits the graph's nodes itself: the engine does.
/// </summary>
public sealed record RewriteRule(string Name, OpPattern Pattern, Func<Match, IReadOnlyList<Value>?> Build)
{
    /// <summary>The op of the nodes the rule is tried at: the engine offers it no other node.</summary>
    public string RootOp => Pattern.OpName;

    /// <summary>
    /// Captured interior values that may be read outside the match: their readers are rewired to the
    /// builder's extra results (a residual sum read by the next layer). The builder must not read them.
    /// </summary>
    public ImmutableArray<string> AlsoReplaces { get; init; } = [];

    /// <summary>
    /// Patterns for further nodes that read one of the root's inputs, matched in order after the root
    /// (the k and v projections beside q's, over the same input). Each matches a different node; the
    /// nodes belong to the match, and their readers read the builder's last results.
    /// </summary>
    public ImmutableArray<OpPattern> Siblings { get; init; } = [];
}
