using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_attention: softmax(q @ transpose(repeat_kv(k)) / c + mask) @ repeat_kv(v) -> attention(q, k,
/// v, mask; scale = 1/c) (multiplication by c gives scale c; scores neither divided nor multiplied,
/// as GPT-2 computes them with scale_attn_weights false, scale 1). repeat_kv (unsqueeze(2) -> expand
/// [1, 1, g, 1, 1] -> reshape [0, H, -1, d]) is removed: the fused op reads the un-repeated k/v and
/// maps query head h to key/value head h / g (grouped-query attention). Without repeat_kv, g = 1.
/// </summary>
public sealed class FuseAttentionTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_attention";

    public override Stage Stage => Stage.PatternMatcher;

    public static RewriteRule Rule { get; } = new("attention", AttentionPattern(), Build);

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) =>
        PatternRewriter.Rewrite(graph, Rule);

    private static OpPattern AttentionPattern()
    {
        var scores = Op("matmul", Any("q"), Op("transpose", KeysOrValues("k")).When(Axes.SwapsLastTwo));
        var scaled = OneOf(Op("div", scores, Constant("c")), Op("mul", scores, Constant("c")), scores).Named("scaled");
        var probabilities = Op("softmax", Op("add", scaled, Any("mask"))).When(Axes.IsLast("axis"));
        return Op("matmul", probabilities, KeysOrValues("v"));
    }

    private static Pattern KeysOrValues(string name) => OneOf(RepeatKv(Any(name)), Any(name));

    // [b, KV, t, d] -> unsqueeze(2) -> expand to [b, KV, g, t, d] -> reshape to [b, KV * g, t, d].
    private static Pattern RepeatKv(Pattern x) =>
        Op("reshape", Op("expand", Op("unsqueeze", x).Attr("axes", new[] { 2L })).When(ExpandsGroupAxis)).When(MergesGroupIntoHeads);

    private static bool ExpandsGroupAxis(Node expand) =>
        expand.Ints("shape") is [1, 1, _, 1, 1] && expand.Inputs[0].Shape is { Rank: 5 } input && input[2] == Dim.Of(1);

    private static bool MergesGroupIntoHeads(Node reshape)
    {
        var (input, output) = (reshape.Inputs[0].Shape, reshape.Output.Shape);
        return input.Rank == 5 && output.Rank == 4 && input[1].IsKnown && input[2].IsKnown &&
            output[0] == input[0] && output[1] == Dim.Of(input[1].Size * input[2].Size) && output[2] == input[3] && output[3] == input[4];
    }

    private static IReadOnlyList<Value>? Build(Match m)
    {
        var (q, k, v, mask) = (m["q"], m["k"], m["v"], m["mask"]);
        if (q.Shape.Rank != 4 || k.Shape.Rank != 4 || k.Type != v.Type || q.DType != k.DType || q.Shape[3] != k.Shape[3]) return null;
        if (!q.Shape[1].IsKnown || !k.Shape[1].IsKnown || q.Shape[1].Size % k.Shape[1].Size != 0) return null;
        if (mask.DType != q.DType || mask.Shape.Rank != 4 || q.Type != m.Root.Output.Type) return null;
        var scale = m.Producer("scaled").Op switch
        {
            "div" => 1 / m.Constant("c"),
            "mul" => m.Constant("c"),
            _ => 1.0,
        };
        return [m.Emit("attention", [q, k, v, mask], new() { ["scale"] = scale })];
    }
}
