using Kiln.Kernels;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>LinearMath against a double-precision product, on every instruction-set path the machine has: one
/// row, the tiles of four (AVX-512) and two (AVX2) weight rows by three and two input rows and the last row, the
/// next weight group fetched while a group computes, vector tails and column ranges; and each row's result bit
/// for bit independent of the other rows, of the column split and of the vector path.</summary>
public sealed unsafe class LinearMathTests
{
    private static IEnumerable<KernelPath> SupportedPaths => Enum.GetValues<KernelPath>().Where(KernelPaths.IsSupported);

    private static IEnumerable<KernelPath> VectorPaths => SupportedPaths.Where(p => p != KernelPath.Portable);

    public static TheoryData<KernelPath, int, int, int> Cases()
    {
        var data = new TheoryData<KernelPath, int, int, int>();
        foreach (var path in SupportedPaths)
            foreach (var (rows, n, k) in Shapes) data.Add(path, rows, n, k);
        return data;
    }

    private static readonly (int Rows, int N, int K)[] Shapes =
    [
        (1, 7, 1),       // k below one vector
        (1, 9, 64),
        (1, 5, 515),     // k tail after 16-wide and 8-wide steps
        (1, 13, 4096),
        (1, 9, 4103),    // an odd 8-wide chunk, k tail
        (2, 6, 33),      // two rows: the by-two tiles
        (8, 16, 75),     // a decode batch of 8: two by-three tiles, one by-two, several weight groups
        (6, 8, 64),      // whole tiles only
        (3, 4, 13),      // one tile with a k tail
        (5, 7, 100),     // tiles plus leftover rows and columns
        (9, 3, 17),      // fewer columns than a tile of four (AVX-512), one left over from tiles of two (AVX2)
        (4, 5, 24),      // three 8-wide chunks: an odd one after the 16-wide steps, in the tiles
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Product_equals_the_double_precision_reference(KernelPath path, int rows, int n, int k)
    {
        var (x, w) = (Random(rows * k, 1), Random(n * k, 2));
        var y = new float[rows * n];
        fixed (float* px = x, pw = w, py = y) LinearMath.Multiply(path, px, pw, py, rows, k, n, 0, n);
        AssertClose(Reference(x, w, rows, n, k), y, k);
    }

    [Theory]
    [InlineData(7, 13, 515)]
    [InlineData(8, 21, 4103)]
    public void The_vector_paths_give_the_same_bits(int rows, int n, int k)
    {
        // The AVX2 and AVX-512 paths tile differently but add in the same order: a model gives the same logits on both.
        var (x, w) = (Random(rows * k, 11), Random(n * k, 12));
        float[]? first = null;
        foreach (var path in VectorPaths)
        {
            var y = new float[rows * n];
            fixed (float* px = x, pw = w, py = y) LinearMath.Multiply(path, px, pw, py, rows, k, n, 0, n);
            if (first is null) first = y;
            else Assert.Equal(first.Select(BitConverter.SingleToInt32Bits), y.Select(BitConverter.SingleToInt32Bits));
        }
    }

    public static TheoryData<KernelPath> Paths() => [.. SupportedPaths];

    [Theory]
    [MemberData(nameof(Paths))]
    public void The_output_can_be_a_block_of_columns_of_a_wider_matrix(KernelPath path)
    {
        // y is [rows, 3 + n + 2]; the product fills columns 3..3+n of each row and nothing else.
        const int rows = 7, n = 9, k = 40, stride = 3 + n + 2;
        var (x, w) = (Random(rows * k, 9), Random(n * k, 10));
        var y = Enumerable.Repeat(float.NaN, rows * stride).ToArray();
        fixed (float* px = x, pw = w, py = y) LinearMath.Multiply(path, px, pw, py + 3, rows, k, stride, 0, n);
        var expected = Reference(x, w, rows, n, k);
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < stride; c++)
            {
                var actual = y[r * stride + c];
                if (c is >= 3 and < 3 + n) Assert.True(Math.Abs(actual - expected[r * n + c - 3]) <= 1e-4f, $"y[{r},{c}] = {actual}");
                else Assert.True(float.IsNaN(actual), $"y[{r},{c}] outside the block was written");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_column_range_writes_only_its_columns(KernelPath path)
    {
        const int rows = 5, n = 11, k = 40;
        var (x, w) = (Random(rows * k, 3), Random(n * k, 4));
        var y = Enumerable.Repeat(float.NaN, rows * n).ToArray();
        fixed (float* px = x, pw = w, py = y) LinearMath.Multiply(path, px, pw, py, rows, k, n, 3, 8);
        var expected = Reference(x, w, rows, n, k);
        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < n; j++)
            {
                var actual = y[r * n + j];
                if (j is >= 3 and < 8) Assert.True(Math.Abs(actual - expected[r * n + j]) <= 1e-4f, $"y[{r},{j}] = {actual}, expected {expected[r * n + j]}");
                else Assert.True(float.IsNaN(actual), $"y[{r},{j}] outside the range was written");
            }
        }
    }

    [Theory]
    [InlineData(7, 13, 515)]
    [InlineData(8, 21, 515)]
    [InlineData(16, 9, 4103)]
    [InlineData(5, 6, 7)]
    public void Each_row_is_bit_for_bit_its_one_row_product_whatever_the_rows_and_column_split(int rows, int n, int k)
    {
        // A batched decode step relies on this: a sequence's logits must not depend on its neighbours.
        foreach (var path in SupportedPaths) EachRowAlone(path, rows, n, k);
    }

    private static void EachRowAlone(KernelPath path, int rows, int n, int k)
    {
        var (x, w) = (Random(rows * k, 5), Random(n * k, 6));
        var together = new float[rows * n];
        fixed (float* px = x, pw = w, py = together) LinearMath.Multiply(path, px, pw, py, rows, k, n, 0, n);
        for (var r = 0; r < rows; r++)
        {
            var alone = new float[n];
            fixed (float* px = &x[r * k], pw = w, py = alone)
            {
                // Split the columns as two threads might: at an odd column, so groups of four fall differently.
                LinearMath.Multiply(path, px, pw, py, 1, k, n, 0, n / 2 + 1);
                LinearMath.Multiply(path, px, pw, py, 1, k, n, n / 2 + 1, n);
            }
            for (var j = 0; j < n; j++)
                Assert.True(BitConverter.SingleToInt32Bits(alone[j]) == BitConverter.SingleToInt32Bits(together[r * n + j]),
                    $"{path}: row {r}, column {j}: {alone[j]} alone, {together[r * n + j]} among {rows} rows");
        }
    }

    internal static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
    }

    internal static float[] Reference(float[] x, float[] w, int rows, int n, int k)
    {
        var y = new float[rows * n];
        for (var r = 0; r < rows; r++)
            for (var j = 0; j < n; j++)
            {
                double sum = 0;
                for (var i = 0; i < k; i++) sum += (double)x[r * k + i] * w[j * k + i];
                y[r * n + j] = (float)sum;
            }
        return y;
    }

    // Float32 sums of k products of terms in [-1, 1]: the error grows with k.
    internal static void AssertClose(float[] expected, float[] actual, int k)
    {
        Assert.Equal(expected.Length, actual.Length);
        var tolerance = 1e-5f * Math.Max(k, 8);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: {actual[i]}, expected {expected[i]}");
    }
}
