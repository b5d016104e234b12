using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// Applies a set of rewrite rules to a graph until none matches (a fixed point). Each pass tries the
/// nodes as roots in graph order, and at each node only the rules whose root op is the node's op, in
/// the order given; the first match whose builder accepts is applied at once, so matches never
/// overlap and the result is deterministic. Nodes a pass emits are tried in the next one, so rules
/// may build on each other's results in any order. A match owns the nodes its patterns matched
/// (except shared subtrees and constants): none of them but the root may be read outside the match,
/// so a rewrite never duplicates work. Applying a match rewires the readers of the root (and of the
/// rule's AlsoReplaces captures and siblings) to the builder's results and erases the owned nodes;
/// shared nodes left unread are erased at the end of the pass. All edits go through the graph's methods.
/// </summary>
public static class PatternRewriter
{
    /// <summary>
    /// The most passes a rule set may take, the last of which finds nothing; a set still rewriting
    /// then has rules that undo or feed each other forever, and the rewrite fails.
    /// </summary>
    public const int MaxPasses = 100;

    /// <summary>Rewrites the graph in place to the rules' fixed point and returns the number of matches applied.</summary>
    public static int Rewrite(ModelGraph graph, params IReadOnlyList<RewriteRule> rules)
    {
        var byRootOp = rules.ToLookup(rule => rule.RootOp, StringComparer.Ordinal);
        var count = 0;
        for (var pass = 0; pass < MaxPasses; pass++)
        {
            var applied = RewritePass(graph, byRootOp);
            if (applied == 0) return count;
            count += applied;
        }
        throw new InvalidOperationException(
            $"rules {string.Join(", ", rules.Select(r => r.Name))} still matched after {MaxPasses} passes: they rewrite each other's results forever");
    }

    private static int RewritePass(ModelGraph graph, ILookup<string, RewriteRule> byRootOp)
    {
        var shared = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var applied = 0;
        // A copy in graph order: a match erases nodes (skipped here) and emits nodes before its root (tried next pass).
        foreach (var root in graph.Nodes.ToList())
        {
            if (!root.IsInGraph || root.Outputs.Count != 1) continue;
            foreach (var rule in byRootOp[root.Op])
            {
                if (TryApply(graph, rule, root, shared) is not { } replacements) continue;
                applied++;
                // Emitted nodes sit just before the root and read only values defined before it, so the order
                // stays valid unless a rewired reader (of an AlsoReplaces value or a sibling) precedes its
                // replacement: only then is the graph re-sorted. (Sorting the whole graph after every match
                // made rewrites quadratic in the layer count.)
                if (!ReadersFollow(graph, replacements)) graph.SortTopologically();
                break;
            }
        }
        RemoveUnreadShared(graph, shared);
        return applied;
    }

    // Applies the rule's first accepted match at the root; returns the replacement values, or null if none.
    private static IReadOnlyList<Value>? TryApply(ModelGraph graph, RewriteRule rule, Node root, HashSet<Node> shared)
    {
        foreach (var state in PatternMatcher.MatchRule(rule, root))
        {
            // The values the builder's results replace, in its order: the root's, AlsoReplaces', the siblings'.
            Value[] replaced = [root.Output, .. rule.AlsoReplaces.Select(name => state.Captures[name]), .. state.Siblings.Select(s => s.Output)];
            if (!IsSelfContained(state, root, replaced)) continue;
            var match = new Match(graph, root, state.Captures);
            var results = rule.Build(match);
            if (results is null)
            {
                graph.EraseNodes(match.Emitted);
                continue;
            }
            if (results.Count != replaced.Length)
                throw new InvalidOperationException($"rule {rule.Name} returned {results.Count} values, expected {replaced.Length}");
            for (var r = 0; r < replaced.Length; r++) graph.ReplaceUses(replaced[r], results[r]);
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

    // Owned nodes other than the root must be read only inside the match, unless their value is replaced.
    private static bool IsSelfContained(PatternMatcher.State state, Node root, Value[] replaced)
    {
        foreach (var node in state.Owned)
        {
            if (ReferenceEquals(node, root)) continue;
            foreach (var output in node.Outputs)
            {
                if (replaced.Contains(output)) continue;
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
