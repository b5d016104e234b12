using Kiln.Graph;

namespace Kiln.Transforms.PostLoadFusion;

/// <summary>
/// fuse_gate_up_projections (post_load_fusion): the gate and up projections of each MLP, which read the
/// same input, become one <c>linear</c> over <c>PREFIX.gate_up_proj.weight</c> [2 I, hidden] loaded as the
/// concatenation of gate_proj and up_proj, then two slices. A layer whose two recipes have different
/// steps is left as it is.
/// </summary>
public sealed class FuseGateUpProjectionsTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_gate_up_projections";

    public override Stage Stage => Stage.PostLoadFusion;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        SiblingLinears.Fuse(graph, ["gate_proj", "up_proj"], "gate_up_proj");
}
