using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.Fusions;

/// <summary>
/// fuse_rotary_embedding: x * unsqueeze(cos(emb), 1) + rotate_half(x) * unsqueeze(sin(emb), 1), where
/// emb = concat(f, f) and f = unsqueeze(cast(position_ids), -1) * inv_freq, -> rotary_embedding(x,
/// position_ids, cos_cache, sin_cache). The caches [max_position_embeddings, head_dim / 2] are
/// rotary_table nodes over the inv_freq buffer (fp32 product, cos/sin of it, as transformers does),
/// one pair per inv_freq buffer, folded by ONNX Runtime when the session is created rather than stored
/// in the graph; the lowering builds only the run's context of the rows, so the graph (and its cache
/// key) stays independent of the context. Scaled frequencies (linear, llama3) live in inv_freq, so they fuse too.
/// </summary>
public sealed class FuseRotaryEmbeddingTransform : Transform<TransformConfig>
{
    public override string Name => "fuse_rotary_embedding";

    public override Stage Stage => Stage.PatternMatcher;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var caches = new Dictionary<Value, (Value Cos, Value Sin)>(ReferenceEqualityComparer.Instance);
        return PatternRewriter.Rewrite(graph, new RewriteRule("rotary_embedding", RotaryPattern(), m => Build(m, caches)));
    }

    private static OpPattern RotaryPattern()
    {
        var positions = Op("cast", Any("position_ids").Where(p => p.DType == DType.I64 && p.Shape.Rank == 2)).Attr("to", DType.F32.Name());
        var invFreq = Any("inv_freq").Where(f => f.Kind == ValueKind.Buffer && f.DType == DType.F32 && f.Shape.Rank == 1);
        var freqs = Op("mul", Op("unsqueeze", positions).Attr("axes", new[] { -1L }), invFreq).Named("freqs");
        var emb = Op("concat", freqs, freqs).When(Axes.IsLast("axis")).Named("emb");
        // cos/sin are computed once and read by every layer: matched, kept while read.
        var cos = Op("unsqueeze", Op("cos", emb)).Attr("axes", new[] { 1L }).Shared();
        var sin = Op("unsqueeze", Op("sin", emb)).Attr("axes", new[] { 1L }).Shared();
        var x = Any("x").Where(v => v.Shape.Rank == 4 && v.Shape[3].IsKnown && v.Shape[3].Size % 2 == 0);
        var rotateHalf = Op("concat", Op("neg", Op("slice", x).When(SlicesUpperHalf)), Op("slice", x).When(SlicesLowerHalf))
            .When(Axes.IsLast("axis"));
        return Op("add", Op("mul", x, cos), Op("mul", rotateHalf, sin));
    }

    private static bool SlicesLowerHalf(Node slice) =>
        Axes.IsLast("axis")(slice) && slice.Int("start") == 0 && slice.Int("end") == HeadDim(slice) / 2;

    private static bool SlicesUpperHalf(Node slice) =>
        Axes.IsLast("axis")(slice) && slice.Int("start") == HeadDim(slice) / 2 && slice.Int("end") >= HeadDim(slice);

    private static long HeadDim(Node slice) => slice.Inputs[0].Shape[^1].Size;

    private static IReadOnlyList<Value>? Build(Match m, Dictionary<Value, (Value Cos, Value Sin)> caches)
    {
        var (x, invFreq) = (m["x"], m["inv_freq"]);
        if (x.DType != DType.F32 || x.Type != m.Root.Output.Type || invFreq.Shape[0] != Dim.Of(x.Shape[3].Size / 2)) return null;
        if (!caches.TryGetValue(invFreq, out var cache)) caches[invFreq] = cache = AddCaches(m, invFreq);
        return [m.Emit("rotary_embedding", [x, m["position_ids"], cache.Cos, cache.Sin])];
    }

    // The caches are rotary_table nodes over inv_freq, placed first so every layer can read them.
    private static (Value Cos, Value Sin) AddCaches(Match m, Value invFreq)
    {
        long positions = m.Graph.Model?.ContextLength
            ?? throw new KilnException("fuse_rotary_embedding: the graph has no model facts whose context length would size the cos/sin caches");
        var stem = invFreq.Name.EndsWith(".inv_freq", StringComparison.Ordinal) ? invFreq.Name[..^".inv_freq".Length] : invFreq.Name;
        Value Table(string function) =>
            m.EmitAtStart("rotary_table", [invFreq], new() { ["positions"] = positions, ["function"] = function }, $"{stem}.{function}_cache");
        var sin = Table("sin");
        return (Table("cos"), sin);
    }
}
