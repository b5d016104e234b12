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
        graph.EraseNodes(dead);

        var parameters = graph.Parameters.Where(p => !p.Value.IsUsed).ToList();
        foreach (var parameter in parameters) graph.RemoveParameter(parameter);
        var buffers = graph.Buffers.Where(b => !b.Value.IsUsed).ToList();
        foreach (var buffer in buffers) graph.RemoveBuffer(buffer);
        return dead.Count + parameters.Count + buffers.Count;
    }
}
