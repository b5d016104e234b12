namespace Kiln.Graph;

/// <summary>
/// Checks the IR's rules: every value defined once and before use, registered ops, attributes that
/// match the schema, recorded types equal to inferred types, concrete parameter shapes, defined outputs,
/// and producers and users that agree with the node list.
/// </summary>
public static class GraphVerifier
{
    public static void Verify(ModelGraph graph)
    {
        // Sized for every value up front: a large model's graph has thousands, and growing the sets is most of what verifying allocates.
        var count = graph.Inputs.Count + graph.Parameters.Count + graph.Buffers.Count + graph.Nodes.Sum(n => n.Outputs.Count);
        var defined = new HashSet<Value>(count, ReferenceEqualityComparer.Instance);
        var names = new HashSet<string>(count, StringComparer.Ordinal);
        void Define(Value value)
        {
            if (!defined.Add(value) || !names.Add(value.Name)) throw new GraphException($"value '{value.Name}' is defined twice");
        }

        foreach (var input in graph.Inputs) Define(input);
        foreach (var parameter in graph.Parameters)
        {
            if (!parameter.Value.Shape.IsFullyKnown) throw new GraphException($"parameter '{parameter.Name}' has a symbolic shape");
            Define(parameter.Value);
        }
        foreach (var buffer in graph.Buffers) Define(buffer.Value);

        foreach (var node in graph.Nodes)
        {
            foreach (var input in node.Inputs)
            {
                if (!defined.Contains(input)) throw new GraphException($"{node.Op}: input '{input.Name}' is not defined before use");
                if (!input.Users.Contains(node)) throw new GraphException($"{node.Op}: input '{input.Name}' does not list it as a user");
            }
            var inferred = graph.Registry.Get(node.Op).InferTypes(node.Inputs.Select(i => i.Type).ToArray(), node.Attributes);
            if (inferred.Length != node.Outputs.Count) throw new GraphException($"{node.Op}: {node.Outputs.Count} outputs, expected {inferred.Length}");
            for (var i = 0; i < inferred.Length; i++)
            {
                if (inferred[i] != node.Outputs[i].Type)
                    throw new GraphException($"{node.Op}: output '{node.Outputs[i].Name}' is recorded as {node.Outputs[i].Type}, inferred {inferred[i]}");
                if (!ReferenceEquals(node.Outputs[i].Producer, node)) throw new GraphException($"{node.Op}: output '{node.Outputs[i].Name}' names another producer");
                Define(node.Outputs[i]);
            }
        }
        foreach (var output in graph.Outputs)
        {
            if (!defined.Contains(output)) throw new GraphException($"graph output '{output.Name}' is not defined");
        }
        // Only ModelGraph edits users, so a mismatch below is a bug there, not in a transform.
        var returned = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        foreach (var value in defined)
        {
            for (var u = 0; u < value.Users.Count; u++)
            {
                var user = value.Users[u];
                if (!user.IsInGraph || !user.Inputs.Contains(value))
                    throw new GraphException($"value '{value.Name}' lists {user.Op} as a user, which does not read it");
            }
            if (value.IsGraphOutput != returned.Contains(value)) throw new GraphException($"value '{value.Name}' is wrong about being a graph output");
        }
    }
}
