namespace Kiln.Graph;

/// <summary>Read-only questions about a graph's structure.</summary>
public static class GraphAnalysis
{
    /// <summary>Nodes none of whose outputs reach a graph output.</summary>
    public static List<Node> DeadNodes(ModelGraph graph)
    {
        var live = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        var dead = new List<Node>();
        for (var i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var node = graph.Nodes[i];
            if (node.Outputs.Any(live.Contains)) live.UnionWith(node.Inputs);
            else dead.Add(node);
        }
        dead.Reverse();
        return dead;
    }

    /// <summary>For each value, the nodes that read it.</summary>
    public static Dictionary<Value, List<Node>> Consumers(ModelGraph graph)
    {
        var consumers = new Dictionary<Value, List<Node>>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes)
        {
            foreach (var input in node.Inputs)
            {
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                if (!list.Contains(node)) list.Add(node);
            }
        }
        return consumers;
    }
}
