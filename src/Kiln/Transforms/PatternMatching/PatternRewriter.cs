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
        var index = new GraphIndex(graph);
        var shared = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var count = 0;
        for (var i = 0; i < graph.Nodes.Count; i++)
        {
            var root = graph.Nodes[i];
            if (root.Outputs.Count != 1) continue;
            var next = i + 1 < graph.Nodes.Count ? graph.Nodes[i + 1] : null;
            foreach (var rule in rules)
            {
                if (TryApply(graph, index, rule, root, shared) is not { } replacements) continue;
                count++;
                // Emitted nodes sit just before the root and read only values defined before it, so the order
                // stays valid unless a rewired reader (of an AlsoReplaces value) precedes its replacement: only
                // then is the graph re-sorted. (Sorting and re-indexing the whole graph after every match made
                // rewrites quadratic in the layer count.)
                if (!ReadersFollow(graph, index, replacements)) SortTopologically(graph);
                // Owned nodes came before the root, so the node after it is still there: continue from it.
                i = next is null ? graph.Nodes.Count : graph.Nodes.IndexOf(next) - 1;
                break;
            }
        }
        RemoveUnreadShared(graph, shared);
        return count;
    }

    // Applies the rule's first accepted match at the root; returns the replacement values, or null if none.
    private static IReadOnlyList<Value>? TryApply(ModelGraph graph, GraphIndex index, RewriteRule rule, Node root, HashSet<Node> shared)
    {
        var start = new State(ImmutableDictionary<string, Value>.Empty.WithComparers(StringComparer.Ordinal), [], []);
        foreach (var state in Match(rule.Pattern, root.Output, start, false, index))
        {
            var alsoReplaced = rule.AlsoReplaces.Select(name => state.Captures[name]).ToArray();
            if (!IsSelfContained(graph, index, state, root, alsoReplaced)) continue;
            var match = new Match(graph, root, state.Captures, index.Producers);
            var results = rule.Build(match);
            if (results is null)
            {
                graph.RemoveNodes(match.Emitted);
                continue;
            }
            if (results.Count != 1 + alsoReplaced.Length)
                throw new InvalidOperationException($"rule {rule.Name} returned {results.Count} values, expected {1 + alsoReplaced.Length}");
            index.Add(match.Emitted);
            graph.ReplaceUses(root.Output, results[0]);
            index.Replace(root.Output, results[0]);
            for (var r = 0; r < alsoReplaced.Length; r++)
            {
                graph.ReplaceUses(alsoReplaced[r], results[r + 1]);
                index.Replace(alsoReplaced[r], results[r + 1]);
            }
            graph.RemoveNodes(state.Owned);
            index.Remove(state.Owned);
            shared.UnionWith(state.Shared);
            return results;
        }
        return null;
    }

    // Whether every reader of each value comes after the node producing it.
    private static bool ReadersFollow(ModelGraph graph, GraphIndex index, IReadOnlyList<Value> values)
    {
        foreach (var value in values)
        {
            if (!index.Producers.TryGetValue(value, out var producer) || !index.Consumers.TryGetValue(value, out var readers)) continue;
            var defined = graph.Nodes.IndexOf(producer);
            if (readers.Any(reader => graph.Nodes.IndexOf(reader) < defined)) return false;
        }
        return true;
    }

    // The captures so far and the nodes matched, split into owned (removed) and shared (kept).
    private sealed record State(ImmutableDictionary<string, Value> Captures, ImmutableHashSet<Node> Owned, ImmutableHashSet<Node> Shared);

    // Every way the pattern matches the value, in declaration order (backtracking through alternatives and input orders).
    private static IEnumerable<State> Match(Pattern pattern, Value value, State state, bool shared, GraphIndex index)
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
        index.Producers.TryGetValue(value, out var node);
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
                    foreach (var result in Match(alternative, value, state, shared, index)) yield return result;
                }
                break;
            case OpPattern op:
                if (node is null || node.Op != op.OpName || node.Outputs.Count != 1 || node.Inputs.Count != op.Inputs.Length) yield break;
                if (!op.NodeChecks.All(check => check(node))) yield break;
                state = shared ? state with { Shared = state.Shared.Add(node) } : state with { Owned = state.Owned.Add(node) };
                IEnumerable<ImmutableArray<Pattern>> orders = op.IsCommutative ? [op.Inputs, [op.Inputs[1], op.Inputs[0]]] : [op.Inputs];
                foreach (var inputs in orders)
                {
                    foreach (var result in MatchInputs(inputs, node.Inputs, 0, state, shared, index)) yield return result;
                }
                break;
            default:
                throw new InvalidOperationException($"unknown pattern {pattern.GetType().Name}");
        }
    }

    private static IEnumerable<State> MatchInputs(ImmutableArray<Pattern> patterns, List<Value> values, int i, State state, bool shared, GraphIndex index)
    {
        if (i == patterns.Length)
        {
            yield return state;
            yield break;
        }
        foreach (var partial in Match(patterns[i], values[i], state, shared, index))
        {
            foreach (var result in MatchInputs(patterns, values, i + 1, partial, shared, index)) yield return result;
        }
    }

    // Owned nodes other than the root must be read only inside the match (or be replaced values).
    private static bool IsSelfContained(ModelGraph graph, GraphIndex index, State state, Node root, Value[] alsoReplaced)
    {
        foreach (var node in state.Owned)
        {
            if (ReferenceEquals(node, root)) continue;
            foreach (var output in node.Outputs)
            {
                if (alsoReplaced.Contains(output)) continue;
                if (graph.Outputs.Contains(output)) return false;
                if (index.Consumers.TryGetValue(output, out var readers) && !readers.All(state.Owned.Contains)) return false;
            }
        }
        return true;
    }

    // Keeps the order where it is valid and moves a node just before the first reader that precedes it.
    private static void SortTopologically(ModelGraph graph)
    {
        var producers = new GraphIndex(graph).Producers;
        var placed = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var order = new List<Node>(graph.Nodes.Count);
        void Place(Node node)
        {
            if (!placed.Add(node)) return;
            foreach (var input in node.Inputs)
            {
                if (producers.TryGetValue(input, out var producer)) Place(producer);
            }
            order.Add(node);
        }
        foreach (var node in graph.Nodes) Place(node);
        graph.Nodes.Clear();
        graph.Nodes.AddRange(order);
    }

    private static void RemoveUnreadShared(ModelGraph graph, HashSet<Node> shared)
    {
        var read = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        var unread = new List<Node>();
        for (var i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var node = graph.Nodes[i];
            if (shared.Contains(node) && !node.Outputs.Any(read.Contains)) unread.Add(node);
            else read.UnionWith(node.Inputs);
        }
        graph.RemoveNodes(unread);
    }

    // Who produces and who reads each value; kept up to date through a rewrite as the graph changes,
    // holding what GraphAnalysis.Consumers would compute afresh (each reader once, no empty lists).
    private sealed class GraphIndex
    {
        public GraphIndex(ModelGraph graph)
        {
            Consumers = GraphAnalysis.Consumers(graph);
            foreach (var node in graph.Nodes)
            {
                foreach (var output in node.Outputs) Producers[output] = node;
            }
        }

        public Dictionary<Value, Node> Producers { get; } = new(ReferenceEqualityComparer.Instance);

        public Dictionary<Value, List<Node>> Consumers { get; }

        public void Add(IEnumerable<Node> nodes)
        {
            foreach (var node in nodes)
            {
                foreach (var output in node.Outputs) Producers[output] = node;
                foreach (var input in node.Inputs)
                {
                    if (!Consumers.TryGetValue(input, out var readers)) Consumers[input] = readers = [];
                    if (!readers.Contains(node)) readers.Add(node);
                }
            }
        }

        // As ModelGraph.ReplaceUses: every reader of from now reads to.
        public void Replace(Value from, Value to)
        {
            if (ReferenceEquals(from, to) || !Consumers.Remove(from, out var moved)) return;
            if (!Consumers.TryGetValue(to, out var readers)) Consumers[to] = readers = [];
            foreach (var node in moved)
            {
                if (!readers.Contains(node)) readers.Add(node);
            }
        }

        public void Remove(IEnumerable<Node> nodes)
        {
            foreach (var node in nodes)
            {
                foreach (var output in node.Outputs)
                {
                    Producers.Remove(output);
                    Consumers.Remove(output);
                }
                foreach (var input in node.Inputs)
                {
                    if (!Consumers.TryGetValue(input, out var readers)) continue;
                    readers.Remove(node);
                    if (readers.Count == 0) Consumers.Remove(input);
                }
            }
        }
    }
}
