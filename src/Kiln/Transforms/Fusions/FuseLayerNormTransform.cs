using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_layer_norm: c * rsqrt(mean(c^2, -1, keepdim) + eps) * weight + bias with c = x - mean(x, -1,
/// keepdim) -> layer_norm(x, weight, bias; epsilon). Runs before fuse_rms_norm, whose pattern would
/// otherwise take the inner part (an RMSNorm of the centered x) and leave the mean and the bias behind.
/// </summary>
public sealed class FuseLayerNormTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_layer_norm";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("layer_norm", LayerNormPattern(), Build);

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static OpPattern LayerNormPattern()
    {
        var centered = Op("sub", Any("x"), LastAxisMean(Any("x"))).Named("centered");
        var variance = LastAxisMean(Op("pow", centered, Constant(2)));
        var normalized = Op("mul", centered, Op("rsqrt", Op("add", variance, Constant("epsilon"))));
        return Op("add", Op("mul", normalized, Any("weight").Where(IsVector)), Any("bias").Where(IsVector));
    }

    private static OpPattern LastAxisMean(Pattern x) => Op("mean", x).Attr("keepdim", 1L).When(Axes.ReducesLast);

    private static bool IsVector(Value value) => value.Shape.Rank == 1;

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (x, weight, bias) = (m["x"], m["weight"], m["bias"]);
        if (x.Type != m.Root.Output.Type || weight.Type != bias.Type || weight.DType != x.DType || x.Shape[^1] != weight.Shape[0]) return null;
        return [m.Emit("layer_norm", [x, weight, bias], new() { ["epsilon"] = m.Constant("epsilon") })];
    }
}
