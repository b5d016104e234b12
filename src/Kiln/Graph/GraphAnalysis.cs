namespace Kiln.Graph;

/// <summary>Read-only questions about a graph's structure.</summary>
public static class GraphAnalysis
{
    /// <summary>Nodes none of whose outputs reach a graph output, in graph order.</summary>
    public static List<Node> DeadNodes(ModelGraph graph)
    {
        // Backwards, so every reader of a node's outputs has been judged before the node.
        var dead = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        for (var i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var node = graph.Nodes[i];
            if (node.Outputs.All(o => !o.IsGraphOutput && o.Users.All(dead.Contains))) dead.Add(node);
        }
        return graph.Nodes.Where(dead.Contains).ToList();
    }
}
