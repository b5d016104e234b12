using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// Applies rewrite rules to a graph. Nodes are tried as roots in graph order, and rules in the order
/// given; the first match whose builder accepts is applied at once, so matches never overlap and the
/// result is deterministic. A match owns the nodes its patterns matched (except shared subtrees and
/// constants): none of them but the root may be read outside the match, so a rewrite never duplicates
/// work. Applying a match rewires the root's readers (and those of the rule's AlsoReplaces captures)
/// to the builder's results and removes the owned nodes; shared nodes left unread are removed at the end.
/// </summary>
public static class PatternRewriter
{
    /// <summary>Rewrites the graph in place and returns the number of matches applied.</summary>
    public static int Rewrite(ModelGraph graph, params IReadOnlyList<RewriteRule> rules)
    {
        var shared = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var count = 0;
        for (var i = 0; i < graph.Nodes.Count; i++)
        {
            var root = graph.Nodes[i];
            if (root.Outputs.Count != 1) continue;
            var next = i + 1 < graph.Nodes.Count ? graph.Nodes[i + 1] : null;
            foreach (var rule in rules)
            {
                if (TryApply(graph, rule, root, shared) is not { } replacements) continue;
                count++;
                // Emitted nodes sit just before the root and read only values defined before it, so the order
                // stays valid unless a rewired reader (of an AlsoReplaces value) precedes its replacement: only
                // then is the graph re-sorted. (Sorting and re-indexing the whole graph after every match made
                // rewrites quadratic in the layer count.)
                if (!ReadersFollow(graph, replacements)) graph.SortTopologically();
                // Owned nodes came before the root, so the node after it is still there: continue from it.
                i = next is null ? graph.Nodes.Count : graph.Nodes.IndexOf(next) - 1;
                break;
            }
        }
        RemoveUnreadShared(graph, shared);
        return count;
    }

    // Applies the rule's first accepted match at the root; returns the replacement values, or null if none.
    private static IReadOnlyList<Value>? TryApply(ModelGraph graph, RewriteRule rule, Node root, HashSet<Node> shared)
    {
        var start = new State(ImmutableDictionary<string, Value>.Empty.WithComparers(StringComparer.Ordinal), [], []);
        foreach (var state in Match(rule.Pattern, root.Output, start, false))
        {
            var alsoReplaced = rule.AlsoReplaces.Select(name => state.Captures[name]).ToArray();
            if (!IsSelfContained(state, root, alsoReplaced)) continue;
            var match = new Match(graph, root, state.Captures);
            var results = rule.Build(match);
            if (results is null)
            {
                graph.EraseNodes(match.Emitted);
                continue;
            }
            if (results.Count != 1 + alsoReplaced.Length)
                throw new InvalidOperationException($"rule {rule.Name} returned {results.Count} values, expected {1 + alsoReplaced.Length}");
            graph.ReplaceUses(root.Output, results[0]);
            for (var r = 0; r < alsoReplaced.Length; r++) graph.ReplaceUses(alsoReplaced[r], results[r + 1]);
            graph.EraseNodes(state.Owned);
            shared.UnionWith(state.Shared);
            return results;
        }
        return null;
    }

    // Whether every reader of each value comes after the node producing it.
    private static bool ReadersFollow(ModelGraph graph, IReadOnlyList<Value> values)
    {
        foreach (var value in values)
        {
            if (value.Producer is not { } producer) continue;
            var defined = graph.Nodes.IndexOf(producer);
            if (value.Users.Any(reader => graph.Nodes.IndexOf(reader) < defined)) return false;
        }
        return true;
    }

    // The captures so far and the nodes matched, split into owned (removed) and shared (kept).
    private sealed record State(ImmutableDictionary<string, Value> Captures, ImmutableHashSet<Node> Owned, ImmutableHashSet<Node> Shared);

    // Every way the pattern matches the value, in declaration order (backtracking through alternatives and input orders).
    private static IEnumerable<State> Match(Pattern pattern, Value value, State state, bool shared)
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
                if (node is { Op: "constant" } && (constant.Value is not { } expected || node.Float("value") == expected))
                    yield return state with { Shared = state.Shared.Add(node) };
                break;
            case AlternativesPattern alternatives:
                foreach (var alternative in alternatives.Alternatives)
                {
                    foreach (var result in Match(alternative, value, state, shared)) yield return result;
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
        foreach (var partial in Match(patterns[i], values[i], state, shared))
        {
            foreach (var result in MatchInputs(patterns, values, i + 1, partial, shared)) yield return result;
        }
    }

    // Owned nodes other than the root must be read only inside the match (or be replaced values).
    private static bool IsSelfContained(State state, Node root, Value[] alsoReplaced)
    {
        foreach (var node in state.Owned)
        {
            if (ReferenceEquals(node, root)) continue;
            foreach (var output in node.Outputs)
            {
                if (alsoReplaced.Contains(output)) continue;
                if (output.IsGraphOutput || !output.Users.All(state.Owned.Contains)) return false;
            }
        }
        return true;
    }

    // Backwards, so that a shared node read only by unread shared nodes is unread too.
    private static void RemoveUnreadShared(ModelGraph graph, HashSet<Node> shared)
    {
        var unread = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        for (var i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var node = graph.Nodes[i];
            if (shared.Contains(node) && node.Outputs.All(o => !o.IsGraphOutput && o.Users.All(unread.Contains))) unread.Add(node);
        }
        graph.EraseNodes(graph.Nodes.Where(unread.Contains).ToList());
    }
}
