using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>fuse_swiglu: silu(gate) * up, with silu also written as gate * sigmoid(gate) -> swiglu(gate, up).</summary>
public sealed class FuseSwiGluTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_swiglu";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("swiglu", SwiGluPattern(), Build);

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static OpPattern SwiGluPattern()
    {
        var silu = OneOf(Op("silu", Any("gate")), Op("mul", Any("gate"), Op("sigmoid", Any("gate"))));
        return Op("mul", silu, Any("up"));
    }

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (gate, up) = (m["gate"], m["up"]);
        if (gate.Type != up.Type || gate.Type != m.Root.Output.Type) return null;
        return [m.Emit("swiglu", [gate, up])];
    }
}
