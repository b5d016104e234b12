using Kiln.Export;
using Kiln.Graph;

namespace Kiln.Models;

/// <summary>
/// Pieces of attention that several families share, in the primitive form of their Hugging Face code (where
/// the other families copy them from modeling_llama.py): the causal mask, the rotate-half rotary embedding
/// and the repeat of key/value heads for grouped-query attention. Each family's Attention stays in its model.
/// </summary>
public static class AttentionMath
{
    /// <summary>The score a masked position gets: the minimum float, as transformers uses.</summary>
    public const double MaskedScore = -3.4028234663852886e38;

    /// <summary>
    /// [batch, 1, query, key]: 0 where query i sees key j (j &lt;= i and, with a sliding window w, j &gt; i - w),
    /// the minimum float elsewhere, to be added to the scores.
    /// </summary>
    public static Tensor CausalMask(Tracer t, Tensor positionIds, int? slidingWindow = null)
    {
        using var scope = t.Scope("causal_mask");
        var queryPositions = positionIds.Unsqueeze(-1);
        var keyPositions = positionIds.Unsqueeze(1);
        var allowed = keyPositions.LessOrEqual(queryPositions);
        if (slidingWindow is { } window)
            allowed = allowed.And(keyPositions.Greater(queryPositions - window));
        var mask = allowed.Where(t.Scalar(0, DType.F32), t.Scalar(MaskedScore, DType.F32));
        return mask.Unsqueeze(1);
    }

    /// <summary>x * cos + rotate_half(x) * sin for x [batch, heads, seq, head_dim], cos/sin broadcast over heads.</summary>
    public static Tensor ApplyRotary(Tensor x, Tensor cos, Tensor sin, int headDim) =>
        x * cos.Unsqueeze(1) + RotateHalf(x, headDim) * sin.Unsqueeze(1);

    // rotate_half: the head's two halves swapped, the second negated.
    private static Tensor RotateHalf(Tensor x, int headDim)
    {
        var half = headDim / 2;
        var x1 = x.Slice(-1, 0, half);
        var x2 = x.Slice(-1, half, long.MaxValue);
        return Tensor.Cat(-1, -x2, x1);
    }

    /// <summary>
    /// [batch, kv_heads, seq, d] -> [batch, heads, seq, d], each key/value head repeated for its query group
    /// (MQA: one key/value head).
    /// </summary>
    public static Tensor RepeatKv(Tensor x, int heads, int kvHeads, int headDim)
    {
        var groups = heads / kvHeads;
        if (groups == 1) return x;
        return x.Unsqueeze(2).Expand(1, 1, groups, 1, 1).View(0, heads, -1, headDim);
    }
}
