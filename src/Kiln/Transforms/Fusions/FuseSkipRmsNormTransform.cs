using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_skip_rms_norm: rms_norm(a + b, weight) -> skip_rms_norm(a, b, weight) with outputs (normed,
/// sum); every other reader of the sum (the residual stream) reads the fused op's sum. Runs after
/// fuse_rms_norm.
/// </summary>
public sealed class FuseSkipRmsNormTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_skip_rms_norm";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("skip_rms_norm", Op("rms_norm", Op("add", Any("a"), Any("b")).Named("sum"), Any("weight")), Build)
    {
        AlsoReplaces = ["sum"],
    };

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (a, b) = (m["a"], m["b"]);
        if (a.Type != b.Type || a.Type != m["sum"].Type) return null;
        var fused = m.EmitNode("skip_rms_norm", [a, b, m["weight"]], new() { ["epsilon"] = m.Root.Float("epsilon") });
        return [fused.Outputs[0], fused.Outputs[1]];
    }
}
