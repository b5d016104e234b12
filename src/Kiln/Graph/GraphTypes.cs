namespace Kiln.Graph;

/// <summary>Re-derives node output types after a transform changed the types it starts from.</summary>
public static class GraphTypes
{
    /// <summary>
    /// Infers every node's output types again, in order, from its inputs' current types (e.g. after a
    /// parameter's shape shrank to one rank's shard); an op whose inputs no longer fit raises its error.
    /// </summary>
    public static void Refresh(ModelGraph graph)
    {
        foreach (var node in graph.Nodes)
        {
            var types = graph.Registry.Get(node.Op).InferTypes(node.Inputs.Select(i => i.Type).ToArray(), node.Attributes);
            for (var i = 0; i < types.Length; i++) node.Outputs[i].Type = types[i];
        }
    }
}
