using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// The shared engine of the cleanups that drop nodes in favour of values computed earlier: one pass
/// in node order with a map of forwarded values, so the cost is linear in the graph's size.
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
        var forwarded = new Dictionary<Value, Value>(ReferenceEqualityComparer.Instance);
        var removed = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var operands = new HashSet<Value>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes)
        {
            Redirect(node.Inputs, forwarded);
            if (replacement(node) is not { } values) continue;
            for (var i = 0; i < node.Outputs.Count; i++)
            {
                var (from, to) = (node.Outputs[i], values[i]);
                if (from.Type != to.Type) throw new GraphException($"cannot replace {from.Name}: {from.Type} with {to.Name}: {to.Type}");
                forwarded[from] = to;
            }
            removed.Add(node);
            operands.UnionWith(node.Inputs);
        }
        Redirect(graph.Outputs, forwarded);
        graph.RemoveNodes(removed);
        RemoveUnreadConstants(graph, operands);
        return removed.Count;
    }

    /// <summary>Removes the constant nodes among the producers of <paramref name="operands"/> that nothing reads any more.</summary>
    public static void RemoveUnreadConstants(ModelGraph graph, IReadOnlySet<Value> operands)
    {
        if (operands.Count == 0) return;
        var read = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes) read.UnionWith(node.Inputs);
        graph.Nodes.RemoveAll(n => n.Op == "constant" && operands.Contains(n.Output) && !read.Contains(n.Output));
    }

    private static void Redirect(List<Value> values, Dictionary<Value, Value> forwarded)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (forwarded.TryGetValue(values[i], out var to)) values[i] = to;
        }
    }
}
