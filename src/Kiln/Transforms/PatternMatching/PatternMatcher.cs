using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// Matches patterns against a graph's values: every way a pattern fits, in declaration order,
/// backtracking through alternatives and the input orders of add and mul. Matching reads the graph
/// and never changes it; <see cref="PatternRewriter"/> applies the matches of rules.
/// </summary>
public static class PatternMatcher
{
    /// <summary>
    /// The captures of the first way <paramref name="pattern"/> matches <paramref name="value"/>, or null.
    /// For a transform that recognizes a structure without rewriting it (insert_kv_cache's causal mask).
    /// </summary>
    public static IReadOnlyDictionary<string, Value>? Match(Pattern pattern, Value value) =>
        Matches(pattern, value, State.Empty, false).FirstOrDefault()?.Captures;

    /// <summary>Every way a rule matches at <paramref name="root"/>: its pattern, then its siblings.</summary>
    internal static IEnumerable<State> MatchRule(RewriteRule rule, Node root)
    {
        var matches = Matches(rule.Pattern, root.Output, State.Empty, false);
        return rule.Siblings.IsEmpty ? matches : matches.SelectMany(state => MatchSiblings(rule.Siblings, 0, Candidates(root), state));
    }

    /// <summary>
    /// The captures so far and the nodes matched: owned ones (removed by a rewrite) and shared ones
    /// (kept), and the siblings' nodes in the rule's order.
    /// </summary>
    internal sealed record State(
        ImmutableDictionary<string, Value> Captures, ImmutableHashSet<Node> Owned, ImmutableHashSet<Node> Shared, ImmutableList<Node> Siblings)
    {
        public static State Empty { get; } = new(ImmutableDictionary<string, Value>.Empty.WithComparers(StringComparer.Ordinal), [], [], []);
    }

    private static IEnumerable<State> Matches(Pattern pattern, Value value, State state, bool shared)
    {
        if (!pattern.ValueChecks.All(check => check(value))) yield break;
        if (pattern.Capture is { } name)
        {
            if (state.Captures.TryGetValue(name, out var bound))
            {
                if (!ReferenceEquals(bound, value)) yield break;
            }
            else state = state with { Captures = state.Captures.Add(name, value) };
        }
        shared |= pattern.IsShared;
        var node = value.Producer;
        switch (pattern)
        {
            case AnyPattern:
                yield return state;
                break;
            case ConstantPattern constant:
                if (node is { Op: "constant" } && (constant.Accepts is not { } accepts || accepts(node.Float("value"))))
                    yield return state with { Shared = state.Shared.Add(node) };
                break;
            case AlternativesPattern alternatives:
                foreach (var alternative in alternatives.Alternatives)
                {
                    foreach (var result in Matches(alternative, value, state, shared)) yield return result;
                }
                break;
            case OpPattern op:
                if (node is null || node.Op != op.OpName || node.Outputs.Count != 1 || node.Inputs.Count != op.Inputs.Length) yield break;
                if (!op.NodeChecks.All(check => check(node))) yield break;
                state = shared ? state with { Shared = state.Shared.Add(node) } : state with { Owned = state.Owned.Add(node) };
                IEnumerable<ImmutableArray<Pattern>> orders = op.IsCommutative ? [op.Inputs, [op.Inputs[1], op.Inputs[0]]] : [op.Inputs];
                foreach (var inputs in orders)
                {
                    foreach (var result in MatchInputs(inputs, node.Inputs, 0, state, shared)) yield return result;
                }
                break;
            default:
                throw new InvalidOperationException($"unknown pattern {pattern.GetType().Name}");
        }
    }

    private static IEnumerable<State> MatchInputs(ImmutableArray<Pattern> patterns, IReadOnlyList<Value> values, int i, State state, bool shared)
    {
        if (i == patterns.Length)
        {
            yield return state;
            yield break;
        }
        foreach (var partial in Matches(patterns[i], values[i], state, shared))
        {
            foreach (var result in MatchInputs(patterns, values, i + 1, partial, shared)) yield return result;
        }
    }

    // Sibling i is a candidate not yet in the match whose value the pattern fits, with the captures so far.
    private static IEnumerable<State> MatchSiblings(ImmutableArray<OpPattern> siblings, int i, IReadOnlyList<Node> candidates, State state)
    {
        if (i == siblings.Length)
        {
            yield return state;
            yield break;
        }
        foreach (var candidate in candidates)
        {
            if (candidate.Outputs.Count != 1 || state.Owned.Contains(candidate) || state.Shared.Contains(candidate)) continue;
            foreach (var partial in Matches(siblings[i], candidate.Output, state, false))
            {
                var withSibling = partial with { Siblings = partial.Siblings.Add(candidate) };
                foreach (var result in MatchSiblings(siblings, i + 1, candidates, withSibling)) yield return result;
            }
        }
    }

    // The other readers of the root's inputs, in input order and then reading order. A copy: a builder
    // that declines has emitted readers of these inputs while the candidates were being tried.
    private static List<Node> Candidates(Node root) =>
        root.Inputs.SelectMany(input => input.Users).Where(user => !ReferenceEquals(user, root)).Distinct().ToList();
}
