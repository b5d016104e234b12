using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// post_export: removes nodes whose outputs reach no graph output, then the parameters and buffers
/// no node reads (an unread parameter would still be loaded by the runtime). Graph inputs stay.
/// </summary>
public sealed class EliminateDeadCodeTransform : Transform<TransformConfig>
{
    public override string Name => "eliminate_dead_code";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var dead = GraphAnalysis.DeadNodes(graph);
        graph.RemoveNodes(dead);

        var read = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes) read.UnionWith(node.Inputs);
        var parameters = graph.Parameters.RemoveAll(p => !read.Contains(p.Value));
        var buffers = graph.Buffers.RemoveAll(b => !read.Contains(b.Value));
        return dead.Count + parameters + buffers;
    }
}
