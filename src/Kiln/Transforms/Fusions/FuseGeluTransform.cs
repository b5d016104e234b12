using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_gelu: the tanh GELU in the primitive form of <see cref="Models.Activations.GeluTanh"/> (GPT-2's
/// gelu_new, Gemma's gelu_pytorch_tanh), x * 0.5 * (tanh((x + x^3 * 0.044715) * sqrt(2/pi)) + 1) ->
/// gelu(x; approximate = tanh). The constants are compared as float32, the dtype the graph computes in.
/// </summary>
public sealed class FuseGeluTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_gelu";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("gelu_tanh", GeluTanhPattern(), Build);

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static OpPattern GeluTanhPattern()
    {
        var cubic = Op("add", Any("x"), Op("mul", Op("pow", Any("x"), Float32(3)), Float32(0.044715)));
        var tanh = Op("tanh", Op("mul", cubic, Float32(Math.Sqrt(2 / Math.PI))));
        return Op("mul", Op("mul", Any("x"), Float32(0.5)), Op("add", tanh, Float32(1)));
    }

    private static Pattern Float32(double value) => Constant($"{value}", v => (float)v == (float)value);

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var x = m["x"];
        if (x.Type != m.Root.Output.Type) return null;
        return [m.Emit("gelu", [x], new() { ["approximate"] = "tanh" })];
    }
}
