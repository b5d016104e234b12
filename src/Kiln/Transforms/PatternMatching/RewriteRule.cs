using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// A rewrite declared as data: a pattern anchored at its root op and a builder that receives the
/// captures and returns the replacement of the root's value, followed by one replacement for each
/// capture named in <see cref="AlsoReplaces"/>. The builder reads only values that stay (wildcard
/// captures, shared subtrees); it may return null to decline, and what it emitted is then removed.
/// </summary>
public sealed record RewriteRule(string Name, OpPattern Pattern, Func<Match, IReadOnlyList<Value>?> Build)
{
    /// <summary>
    /// Captured interior values that may be read outside the match: their readers are rewired to the
    /// builder's extra results (a residual sum read by the next layer). The builder must not read them.
    /// </summary>
    public ImmutableArray<string> AlsoReplaces { get; init; } = [];
}
