using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>
/// cached_attention: causal grouped-query attention over a key/value cache, lowered to com.microsoft
/// GroupQueryAttention. The insert_kv_cache transform puts it in place of <c>attention</c>.
/// </summary>
public static class CachedAttentionOp
{
    public const string Name = "cached_attention";

    /// <summary>
    /// cached_attention(q[b, s, H*d], k[b, s, KV*d], v[b, s, KV*d], past_key[b, KV, M, d], past_value,
    /// seqlens_k[b] i32, total_sequence_length[] i32, cos_cache?[P, d/2], sin_cache?[P, d/2])
    /// -> (output[b, s, H*d], present_key, present_value). The new tokens take positions
    /// seqlens_k + 1 - s .. seqlens_k (ORT's definition: seqlens_k is the total length minus one);
    /// query position i sees the local_window_size keys up to and including its own (-1: no window; measured on
    /// ORT 1.31 CPU). With do_rotary = 1, q and k
    /// are first rotated (rotate_half layout) by cos/sin at those positions. Present has past's shape:
    /// bound to the same buffer as past, the kernel appends in place.
    /// </summary>
    public static OpDefinition Definition { get; } = new(Name, 7, 9,
        [
            AttributeSpec.Int("num_heads"), AttributeSpec.Int("kv_num_heads"), AttributeSpec.Float("scale"),
            AttributeSpec.Int("local_window_size", -1), AttributeSpec.Int("do_rotary", 0),
        ], Infer, Lower);

    private static TensorType[] Infer(InferenceContext c)
    {
        var (heads, kvHeads) = (c.Int("num_heads"), c.Int("kv_num_heads"));
        var (q, k, v, past) = (c[0].Shape, c[1].Shape, c[2].Shape, c[3].Shape);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) throw c.Error("num_heads must be a positive multiple of kv_num_heads");
        // Values ONNX Runtime would refuse or misread (its attributes are 32-bit there).
        if (!double.IsFinite(c.Float("scale")) || c.Float("scale") <= 0) throw c.Error("scale must be a finite positive number");
        if (c.Int("local_window_size") is not -1 and (<= 0 or > int.MaxValue)) throw c.Error("local_window_size must be -1 (no window) or a positive 32-bit size");
        if (c.Int("do_rotary") is not (0 or 1)) throw c.Error("do_rotary must be 0 or 1");
        if (past.Rank != 4 || past[1] != Dim.Of(kvHeads) || !past[3].IsKnown) throw c.Error("past_key must be [batch, kv_num_heads, max_seq, head_dim]");
        var headDim = past[3].Size;
        if (q.Rank != 3 || q[2] != Dim.Of(heads * headDim)) throw c.Error("q must be [batch, seq, num_heads * head_dim]");
        if (k != v || k.Rank != 3 || k[0] != q[0] || k[1] != q[1] || k[2] != Dim.Of(kvHeads * headDim))
            throw c.Error("k and v must be [batch, seq, kv_num_heads * head_dim]");
        if (c[4] != c[3] || c[3].DType != c[0].DType) throw c.Error("past_key and past_value must match, with q's dtype");
        if (c[5].DType != DType.I32 || c[5].Shape.Rank != 1) throw c.Error("seqlens_k must be i32 [batch]");
        if (c[6].DType != DType.I32 || c[6].Shape.Rank != 0) throw c.Error("total_sequence_length must be an i32 scalar");
        var rotary = c.Int("do_rotary") == 1;
        if (rotary != (c.Inputs.Count == 9)) throw c.Error("cos_cache and sin_cache are given exactly when do_rotary = 1");
        if (rotary && (c[7] != c[8] || c[7].Shape.Rank != 2 || c[7].Shape[1] != Dim.Of(headDim / 2)))
            throw c.Error("cos/sin caches must be [positions, head_dim / 2]");
        return [c[0], c[3], c[4]];
    }

    private static void Lower(LoweringContext l)
    {
        var node = l.Node;
        var attributes = new Dictionary<string, object>
        {
            ["num_heads"] = node.Int("num_heads"),
            ["kv_num_heads"] = node.Int("kv_num_heads"),
            ["scale"] = node.Float("scale"),
            ["local_window_size"] = node.Int("local_window_size"),
            ["do_rotary"] = node.Int("do_rotary"),
            ["rotary_interleaved"] = 0L,
        };
        l.EmitOutputs("GroupQueryAttention", l.Inputs, [0, 1, 2], attributes, OnnxGraphBuilder.MicrosoftDomain);
    }
}
