using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// Drops nodes in favour of values computed earlier (eliminate_common_subexpressions, whose test of a
/// node needs every node seen before it, which no pattern can say): one pass in node order, each
/// replaced node's readers rewired at once through its outputs' users, so the cost is linear in the
/// graph's size.
/// </summary>
internal static class ValueForwarding
{
    /// <summary>
    /// Visits the nodes in order, each with its inputs already forwarded. When <paramref name="replacement"/>
    /// returns values (one per output, of the same types), the node's readers and the graph outputs read
    /// those instead and the node is removed, with any constant operand it leaves unread. Returns the
    /// number of nodes removed.
    /// </summary>
    public static int Forward(ModelGraph graph, Func<Node, IReadOnlyList<Value>?> replacement)
    {
        var removed = new List<Node>();
        var operands = new HashSet<Value>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes)
        {
            if (replacement(node) is not { } values) continue;
            for (var i = 0; i < node.Outputs.Count; i++) graph.ReplaceUses(node.Outputs[i], values[i]);
            removed.Add(node);
            operands.UnionWith(node.Inputs);
        }
        graph.EraseNodes(removed);
        RemoveUnreadConstants(graph, operands);
        return removed.Count;
    }

    /// <summary>Removes the constant nodes among the producers of <paramref name="operands"/> that nothing reads any more.</summary>
    public static void RemoveUnreadConstants(ModelGraph graph, IReadOnlySet<Value> operands)
    {
        graph.EraseNodes(graph.Nodes.Where(n => n.Op == "constant" && operands.Contains(n.Output) && !n.Output.IsUsed).ToList());
    }
}
