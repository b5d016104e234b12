using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.Compile;

/// <summary>Settings of <see cref="SplitLongRowsTransform"/>.</summary>
public sealed record SplitLongRowsConfig : TransformConfig
{
    /// <summary>
    /// The longest weight row, in weights, that a <c>kiln_linear</c> product reads in one stretch. 4096: the
    /// float32 input row then takes at most 16 KiB, half of a 32 KiB L1 data cache, and the rest holds the
    /// weight stream (docs/performance.md measured the knee between 4096 and 5120 on a Zen 4 core).
    /// </summary>
    public int LongestRow { get; init; } = 4096;
}

/// <summary>
/// compile: a <c>kiln_linear</c> whose weight rows are longer than <see cref="SplitLongRowsConfig.LongestRow"/>
/// (a Llama down projection, k = intermediate size) reads that weight in column blocks instead: the
/// parameter becomes NAME.column_blocks, [parts, n, k / parts] by a <see cref="SplitColumnsStep"/> (a
/// product of the weights tier, so a warm start maps it), with the fewest equal parts of whole 32-weight
/// vectors that are short enough. The kernel then reads each block in order while only that block's stretch
/// of the input row occupies the L1 cache: on the Zen 4 host a one-row bf16 product over k = 5632 ran 1.6x
/// faster as two blocks of 2816 (docs/performance.md). A weight that anything else reads (a tied embedding), or
/// that comes in several pieces, stays as it is; so does a row no equal split fits.
/// </summary>
public sealed class SplitLongRowsTransform : Transform<SplitLongRowsConfig>
{
    public override string Name => "split_long_rows";

    public override Stage Stage => Stage.Compile;

    /// <summary>Width of the kernels' vector steps: blocks are whole multiples of it.</summary>
    private const int VectorWeights = 32;

    protected override int Rewrite(ModelGraph graph, SplitLongRowsConfig config, TransformContext context)
    {
        if (config.LongestRow < VectorWeights)
            throw new KilnException($"{Name}.longest_row: {config.LongestRow} is below {VectorWeights}, the kernels' vector step");
        var split = 0;
        foreach (var weight in graph.Parameters.ToList())
        {
            var value = weight.Value;
            if (value.Shape.Rank != 2 || !value.Shape[1].IsKnown || value.IsGraphOutput || value.Users.Count == 0
                || value.Users.Any(u => u.Op != "kiln_linear" || u.Inputs.Count != 2 || !ReferenceEquals(u.Inputs[1], value)))
                continue;
            var parts = Parts(value.Shape[1].Size, config.LongestRow);
            if (parts == 0) continue;
            var (n, k) = (value.Shape[0].Size, value.Shape[1].Size);
            var blocks = graph.InsertParameter(graph.Parameters.IndexOf(weight) + 1, $"{weight.Name}.column_blocks", value.DType, [parts, n, k / parts],
                weight.Recipe.Then(new SplitColumnsStep(parts)));
            foreach (var product in value.Users.ToList()) graph.ReplaceNode(product, "kiln_linear", [product.Inputs[0], blocks.Value]);
            graph.RemoveParameter(weight);
            split++;
        }
        return split;
    }

    /// <summary>The fewest equal parts of whole vectors, none longer than <paramref name="longestRow"/>, that <paramref name="k"/> splits into; 0 for none needed or none possible.</summary>
    public static int Parts(long k, int longestRow)
    {
        if (k <= longestRow) return 0;
        for (var parts = (int)((k + longestRow - 1) / longestRow); parts <= k / VectorWeights; parts++)
        {
            if (k % parts == 0 && k / parts % VectorWeights == 0) return parts;
        }
        return 0;
    }
}
