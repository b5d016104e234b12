using Kiln.Graph;

namespace Kiln.Transforms.CacheInit;

/// <summary>
/// Recognizes the additive causal mask of the reference graph (LlamaModel.CausalMask), built from the
/// position ids: where(key &lt;= query [and key &gt; query - window], 0, very negative).unsqueeze(1).
/// A cached attention kernel applies exactly this mask itself, so only a mask proven to be it may go.
/// </summary>
public sealed record CausalMask(Value PositionIds, int? SlidingWindow)
{
    // Anything at least this negative drives its softmax weight to zero in fp32, like -inf.
    private const double BlockedAtMost = -1e30;

    /// <summary>The mask <paramref name="mask"/> computes, or null if it is not a causal mask of this form.</summary>
    public static CausalMask? Match(Value mask)
    {
        Node? Producer(Value v, string op) => v.Producer is { } n && n.Op == op ? n : null;
        double? Constant(Value v) => Producer(v, "constant") is { } c ? c.Float("value") : null;
        bool Axes(Node n, long axis) => n.Ints("axes") is [var a] && a == axis;

        if (Producer(mask, "unsqueeze") is not { } outer || !Axes(outer, 1)) return null;
        if (Producer(outer.Inputs[0], "where") is not { } select) return null;
        if (Constant(select.Inputs[1]) != 0 || Constant(select.Inputs[2]) is not { } blocked || blocked > BlockedAtMost) return null;

        var condition = select.Inputs[0];
        Node causal;
        int? window = null;
        if (Producer(condition, "and") is { } both)
        {
            if (Producer(both.Inputs[0], "less_equal") is not { } lessEqual || Producer(both.Inputs[1], "greater") is not { } greater) return null;
            causal = lessEqual;
            if (Producer(greater.Inputs[1], "sub") is not { } shifted || Constant(shifted.Inputs[1]) is not { } w
                || w != Math.Floor(w) || w < 1 || w > int.MaxValue) return null;
            if (!SamePositions(greater.Inputs[0], causal.Inputs[0], 1) || !SamePositions(shifted.Inputs[0], causal.Inputs[1], -1)) return null;
            window = (int)w;
        }
        else if (Producer(condition, "less_equal") is { } lessEqual)
        {
            causal = lessEqual;
        }
        else
        {
            return null;
        }

        // key positions = positions.unsqueeze(1), query positions = positions.unsqueeze(-1), of one graph input.
        if (Producer(causal.Inputs[0], "unsqueeze") is not { } keys || !Axes(keys, 1)) return null;
        if (Producer(causal.Inputs[1], "unsqueeze") is not { } queries || !Axes(queries, -1)) return null;
        var positions = keys.Inputs[0];
        if (!ReferenceEquals(positions, queries.Inputs[0]) || positions.Kind != ValueKind.Input) return null;
        return new CausalMask(positions, window);
    }

    // a and b are the same value, or both unsqueeze(axis) of the same value.
    private static bool SamePositions(Value a, Value b, long axis)
    {
        if (ReferenceEquals(a, b)) return true;
        return a.Producer is { } na && b.Producer is { } nb
            && na.Op == "unsqueeze" && nb.Op == "unsqueeze" && na.Ints("axes") is [var x] && x == axis
            && nb.Ints("axes") is [var y] && y == axis && ReferenceEquals(na.Inputs[0], nb.Inputs[0]);
    }
}
