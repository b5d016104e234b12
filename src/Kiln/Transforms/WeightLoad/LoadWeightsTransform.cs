using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.WeightLoad;

/// <summary>
/// weight_load: binds every parameter spec to the checkpoint's tensors by header (name, shape, dtype,
/// recipe) and appends the casts the compute dtype needs. Reads no tensor data.
/// </summary>
public sealed class LoadWeightsTransform : Transform<TransformConfig>
{
    public override string Name => "load_weights";

    public override Stage Stage => Stage.WeightLoad;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        WeightBinder.Bind(graph, context.RequireCheckpoint(Name));
        return graph.Parameters.Count;
    }
}
