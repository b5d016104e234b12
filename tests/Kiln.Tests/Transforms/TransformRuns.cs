using Kiln.Graph;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms;

/// <summary>Runs one transform on a hand-built graph and checks that it left a valid graph with no dead nodes.</summary>
public static class TransformRuns
{
    public static int ApplyClean(ITransform transform, ModelGraph graph)
    {
        var matches = transform.Apply(graph, transform.DefaultConfig, new TransformContext(null));
        GraphVerifier.Verify(graph);
        Assert.Empty(GraphAnalysis.DeadNodes(graph));
        return matches;
    }
}
