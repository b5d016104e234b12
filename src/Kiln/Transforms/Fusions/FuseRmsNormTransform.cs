using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_rms_norm: weight * cast(h * rsqrt(mean(h^2, -1, keepdim) + eps)) with h = cast(x), casts
/// optional (a cleanup may have removed identity casts) -> rms_norm(x, weight; epsilon). Matches any
/// rank, so Qwen3's per-head q_norm/k_norm on [batch, seq, heads, head_dim] fuse too.
/// </summary>
public sealed class FuseRmsNormTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_rms_norm";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("rms_norm", RmsNormPattern(), Build);

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static OpPattern RmsNormPattern()
    {
        var h = Optional("cast", Any("x")).Named("h");
        var variance = Op("mean", Op("pow", h, Constant(2))).Attr("keepdim", 1L).When(Axes.ReducesLast);
        var normalized = Op("mul", h, Op("rsqrt", Op("add", variance, Constant("epsilon"))));
        return Op("mul", Any("weight").Where(w => w.Shape.Rank == 1), Optional("cast", normalized));
    }

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (x, weight) = (m["x"], m["weight"]);
        if (x.Type != m.Root.Output.Type || weight.DType != x.DType || x.Shape[^1] != weight.Shape[0]) return null;
        return [m.Emit("rms_norm", [x, weight], new() { ["epsilon"] = m.Constant("epsilon") })];
    }
}
