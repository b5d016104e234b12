using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

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

    private static readonly Pattern MaskPattern = CausalMaskPattern();

    /// <summary>The mask <paramref name="mask"/> computes, or null if it is not a causal mask of this form.</summary>
    public static CausalMask? Match(Value mask)
    {
        if (PatternMatcher.Match(MaskPattern, mask) is not { } captures) return null;
        int? window = captures.TryGetValue("window", out var w) ? (int)w.Producer!.Float("value") : null;
        return new CausalMask(captures["positions"], window);
    }

    // Key positions are positions.unsqueeze(1), query positions positions.unsqueeze(-1), of one graph input;
    // the window's comparison may read its own unsqueezes of them.
    private static Pattern CausalMaskPattern()
    {
        var keys = Op("unsqueeze", Any("positions").Where(p => p.Kind == ValueKind.Input)).Attr("axes", new[] { 1L });
        var queries = Op("unsqueeze", Any("positions")).Attr("axes", new[] { -1L });
        var causal = Op("less_equal", keys, queries);
        var inWindow = Op("greater", keys, Op("sub", queries, Constant("window", IsWindow)));
        var allowed = OneOf(Op("and", causal, inWindow), causal);
        return Op("unsqueeze", Op("where", allowed, Constant(0), Constant("blocked", v => v <= BlockedAtMost))).Attr("axes", new[] { 1L });
    }

    // A window is a whole number of tokens, at least one.
    private static bool IsWindow(double w) => w == Math.Floor(w) && w >= 1 && w <= int.MaxValue;
}
