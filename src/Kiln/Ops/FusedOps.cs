using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>
/// Ops that fusion transforms put in place of primitive subgraphs. Each lowers to one ONNX Runtime
/// kernel (or a short sequence), which is where the speed comes from.
/// </summary>
public static class FusedOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // rms_norm(x, weight) = x * rsqrt(mean(x^2, -1) + epsilon) * weight.
        yield return new("rms_norm", 2, 2, [AttributeSpec.Float("epsilon")], c =>
        {
            RequirePositiveEpsilon(c);
            RequireLastDim(c, 1);
            return [c[0]];
        }, l => l.Emit("RMSNormalization", l.Inputs,
            new Dictionary<string, object> { ["axis"] = -1L, ["epsilon"] = l.Node.Float("epsilon"), ["stash_type"] = 1L }));

        // skip_rms_norm(x, skip, weight) -> (rms_norm(x + skip), x + skip): a residual add and the next norm.
        yield return new("skip_rms_norm", 3, 3, [AttributeSpec.Float("epsilon")], c =>
        {
            if (c[0] != c[1]) throw c.Error("x and skip must have the same type");
            RequirePositiveEpsilon(c);
            RequireLastDim(c, 2);
            return [c[0], c[0]];
        }, l => l.EmitOutputs("SkipSimplifiedLayerNormalization", l.Inputs, [0, null, null, 1],
            new Dictionary<string, object> { ["epsilon"] = l.Node.Float("epsilon") }, OnnxGraphBuilder.MicrosoftDomain));

        // layer_norm(x, weight, bias) = (x - mean(x)) / sqrt(var(x) + epsilon) * weight + bias over the last axis (biased variance).
        yield return new("layer_norm", 3, 3, [AttributeSpec.Float("epsilon")], c =>
        {
            RequirePositiveEpsilon(c);
            RequireLastDim(c, 1);
            RequireLastDim(c, 2);
            return [c[0]];
        }, l => l.Emit("LayerNormalization", l.Inputs,
            new Dictionary<string, object> { ["axis"] = -1L, ["epsilon"] = l.Node.Float("epsilon"), ["stash_type"] = 1L }));

        // skip_layer_norm(x, skip, weight, bias) -> (layer_norm(x + skip), x + skip): a residual add and the next LayerNorm.
        yield return new("skip_layer_norm", 4, 4, [AttributeSpec.Float("epsilon")], c =>
        {
            if (c[0] != c[1]) throw c.Error("x and skip must have the same type");
            RequirePositiveEpsilon(c);
            RequireLastDim(c, 2);
            RequireLastDim(c, 3);
            return [c[0], c[0]];
        }, l => l.EmitOutputs("SkipLayerNormalization", l.Inputs, [0, null, null, 1],
            new Dictionary<string, object> { ["epsilon"] = l.Node.Float("epsilon") }, OnnxGraphBuilder.MicrosoftDomain));

        // rotary_embedding(x[b, heads, s, d], position_ids[b, s], cos_cache[P, d/2], sin_cache[P, d/2]),
        // rotate_half layout: x * cos + rotate_half(x) * sin with cos/sin gathered at each position.
        yield return new("rotary_embedding", 4, 4, [], c =>
        {
            var (x, positions, cos, sin) = (c[0].Shape, c[1], c[2].Shape, c[3].Shape);
            if (x.Rank != 4 || !x[3].IsKnown) throw c.Error("x must be [batch, heads, seq, head_dim]");
            if (positions.DType != DType.I64 || positions.Shape.Rank != 2) throw c.Error("position_ids must be i64 [batch, seq]");
            if (!cos.Equals(sin) || cos.Rank != 2 || cos[1] != Dim.Of(x[3].Size / 2)) throw c.Error("cos/sin caches must be [positions, head_dim / 2]");
            return [c[0]];
        }, l => l.Emit("RotaryEmbedding", [l.Input(0), l.Input(2), l.Input(3), l.Input(1)],
            new Dictionary<string, object> { ["interleaved"] = 0L }));

        // rotary_table(inv_freq[d/2]) = cos or sin of (p * inv_freq[i]) for p in 0..positions-1: the cos/sin
        // caches of rotary_embedding as a computation, not stored data. Its inputs are constants, so ONNX
        // Runtime folds it once when the session is created; graphs and snapshots stay small. The graph
        // says the model's positions; the lowering builds only the run's context of them (folding 10^8
        // rows would take minutes), and no run reads a position past its context.
        yield return new("rotary_table", 1, 1, [AttributeSpec.Int("positions"), AttributeSpec.String("function")], c =>
        {
            if (c[0].DType != DType.F32 || c[0].Shape.Rank != 1) throw c.Error("inv_freq must be an f32 vector");
            if (c.String("function") is not ("cos" or "sin")) throw c.Error("function must be cos or sin");
            if (c.Int("positions") <= 0) throw c.Error("positions must be positive");
            return [new TensorType(DType.F32, Shape.Of(Dim.Of(c.Int("positions")), c[0].Shape[0]))];
        }, LowerRotaryTable);

        // attention(q[b, H, s, d], k[b, KV, t, d], v[b, KV, t, d], mask[., 1, s, t]) = softmax(q k^T * scale + mask) v;
        // query head h reads key/value head h / (H / KV) (grouped-query attention, no repeated copies).
        yield return new("attention", 4, 4, [AttributeSpec.Float("scale")], c =>
        {
            var (q, k, v) = (c[0].Shape, c[1].Shape, c[2].Shape);
            if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4) throw c.Error("q, k, v must be [batch, heads, seq, head_dim]");
            if (!q[1].IsKnown || !k[1].IsKnown || q[1].Size % k[1].Size != 0) throw c.Error("query heads must be a multiple of key/value heads");
            if (!k.Equals(v) || q[3] != k[3]) throw c.Error("k and v must match, with q's head_dim");
            if (c[3].DType != c[0].DType || c[3].Shape.Rank != 4) throw c.Error("mask must be additive, rank 4");
            if (!double.IsFinite(c.Float("scale"))) throw c.Error("scale must be finite");
            return [c[0]];
        }, l => l.Emit("Attention", l.Inputs, new Dictionary<string, object> { ["scale"] = l.Node.Float("scale") }));

        yield return CachedAttentionOp.Definition;

        // swiglu(gate, up) = silu(gate) * up.
        yield return new("swiglu", 2, 2, [], c =>
        {
            if (c[0] != c[1]) throw c.Error("gate and up must have the same type");
            return [c[0]];
        }, l => l.Emit("Mul", [l.Temp("Mul", [l.Input(0), l.Temp("Sigmoid", [l.Input(0)])]), l.Input(1)]));
    }

    // positions [P, 1] (an fp32 range, as transformers casts positions to fp32) * inv_freq [d/2], then cos or sin;
    // P is the node's positions bounded by the run's context.
    private static void LowerRotaryTable(LoweringContext l)
    {
        var scalar = (string name, float value) => l.Builder.AddConstant<float>($"{l.Node.Output.Name}.{name}", [], [value]);
        var positions = l.Temp("Range", [scalar("start", 0), scalar("limit", l.Positions(l.Node.Int("positions"))), scalar("delta", 1)]);
        var angles = l.Temp("Mul", [l.Temp("Unsqueeze", [positions, l.Int64s("axes", [1])]), l.Input(0)]);
        l.Emit(l.Node.String("function") == "cos" ? "Cos" : "Sin", [angles]);
    }

    // The weight (input index) must be a vector as long as x's last dimension.
    private static void RequireLastDim(InferenceContext c, int weightIndex)
    {
        var (x, w) = (c[0].Shape, c[weightIndex].Shape);
        if (w.Rank != 1 || x.Rank == 0 || x[^1] != w[0]) throw c.Error("weight must be a vector as long as the last dimension");
    }

    // ONNX Runtime refuses a negative epsilon when it creates the session; zero or infinity would give NaNs.
    private static void RequirePositiveEpsilon(InferenceContext c)
    {
        if (!double.IsFinite(c.Float("epsilon")) || c.Float("epsilon") <= 0) throw c.Error("epsilon must be a finite positive number");
    }
}
