namespace Kiln.Weights;

/// <summary>
/// Cuts a 2-D tensor [n, k] into <see cref="Parts"/> equal blocks of columns stored one after the other,
/// [parts, n, k / parts]: element [p, i, t] is [i, p · (k / parts) + t]. A one-row product over a weight
/// whose float32 input row no longer fits the L1 cache beside the weight stream (k = 5632: 22 KB) reads the
/// weight far slower than over short rows; in this layout it reads block after block, each in order, with
/// only that block's stretch of the input row in L1 (split_long_rows places it, LinearKernel reads it).
/// </summary>
public sealed record SplitColumnsStep(int Parts) : RecipeStep
{
    public override string ToString() => $"split_columns(parts={Parts})";
}
