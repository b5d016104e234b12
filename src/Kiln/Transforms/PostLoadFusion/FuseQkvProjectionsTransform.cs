using Kiln.Graph;

namespace Kiln.Transforms.PostLoadFusion;

/// <summary>
/// fuse_qkv_projections (post_load_fusion): the q, k and v projections of each attention, which read the
/// same input, become one <c>linear</c> over <c>PREFIX.qkv_proj.weight</c> [(H + 2 KV) d, hidden] (and bias)
/// loaded as the concatenation of q_proj, k_proj and v_proj, then three slices. A layer whose three
/// recipes have different steps is left as it is.
/// </summary>
public sealed class FuseQkvProjectionsTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_qkv_projections";

    public override Stage Stage => Stage.PostLoadFusion;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        SiblingLinears.Fuse(graph, ["q_proj", "k_proj", "v_proj"], "qkv_proj");
}
