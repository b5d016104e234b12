using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_skip_layer_norm: layer_norm(a + b, weight, bias) -> skip_layer_norm(a, b, weight, bias) with
/// outputs (normed, sum); every other reader of the sum (the residual stream) reads the fused op's sum.
/// Runs after fuse_layer_norm.
/// </summary>
public sealed class FuseSkipLayerNormTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_skip_layer_norm";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("skip_layer_norm",
        Op("layer_norm", Op("add", Any("a"), Any("b")).Named("sum"), Any("weight"), Any("bias")), Build)
    {
        AlsoReplaces = ["sum"],
    };

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (a, b) = (m["a"], m["b"]);
        if (a.Type != b.Type || a.Type != m["sum"].Type) return null;
        var fused = m.EmitNode("skip_layer_norm", [a, b, m["weight"], m["bias"]], new() { ["epsilon"] = m.Root.Float("epsilon") });
        return [fused.Outputs[0], fused.Outputs[1]];
    }
}
