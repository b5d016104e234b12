using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms.Cleanups;

/// <summary>Runs one cleanup transform on a small graph, as the pipeline would, and verifies the result.</summary>
public static class Cleanup
{
    public static Tracer NewTracer() => new(OpRegistry.Core);

    public static int Apply(string name, ModelGraph graph)
    {
        Assert.True(TransformRegistry.Default.TryGet(name, out var transform));
        var rewrites = transform.Apply(graph, transform.DefaultConfig, new TransformContext(null));
        GraphVerifier.Verify(graph);
        return rewrites;
    }

    public static string[] Ops(ModelGraph graph) => graph.Nodes.Select(n => n.Op).ToArray();

    /// <summary>The node that computes <paramref name="value"/>.</summary>
    public static Node Producer(ModelGraph graph, Tensor value) => graph.Nodes.Single(n => n.Outputs.Contains(value.Value));

    public static double ConstantValue(ModelGraph graph, Value value) =>
        graph.Nodes.Single(n => n.Op == "constant" && ReferenceEquals(n.Output, value)).Float("value");
}
