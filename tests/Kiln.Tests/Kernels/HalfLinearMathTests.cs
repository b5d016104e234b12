using Kiln.Kernels;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// HalfLinearMath over bf16 and f16 weights on every kernel path this machine supports (the portable
/// one always), against a double-precision product over the exact 16-bit values: one row (one weight stream,
/// on 256-bit and 512-bit vectors), several rows (converted panels through FloatPanelTile's six-by-four or
/// three-by-four tile, its leftovers and its slices over k), vector tails, column ranges and outputs that are
/// blocks of a wider matrix; every 16-bit pattern read exactly, f16's finite ones also in the placed form of one-row
/// products, whatever the magnitude of x.
/// </summary>
public sealed unsafe class HalfLinearMathTests
{
    public enum Format { BFloat16, Float16 }

    public static TheoryData<Format, KernelPath, int, int, int> Cases()
    {
        (int Rows, int N, int K)[] shapes =
        [
            (1, 7, 1),       // k below one vector
            (1, 9, 64),
            (1, 5, 515),     // k tail after 32-wide and 8-wide steps
            (1, 13, 4096),   // the longest row a Zen 4 reads with 256-bit vectors on the AVX-512 path (CpuTuning)
            (1, 9, 4103),    // the shortest it reads with 512-bit ones, a k tail
            (1, 5, 4117),    // a 16-wide step and a k tail after the 32-wide steps
            (2, 6, 33),      // several rows, fewer than a tile
            (6, 8, 64),      // whole tiles only
            (3, 4, 13),      // one tile with a k tail
            (5, 7, 100),     // tiles plus leftover rows and columns
            (9, 3, 17),      // fewer columns than a tile
            (13, 11, 4103),  // many rows over long rows: blocks of 4 · 4103 converted values
            (7, 5, 2063),    // panel tile: six rows (AVX-512) or two threes (AVX2) and one left, slices of 1024 and a 15-wide tail
            (12, 4, 1024),   // whole tiles, one slice exactly
            (6, 9, 16),      // one 16-wide step, a short last panel
        ];
        var data = new TheoryData<Format, KernelPath, int, int, int>();
        foreach (var format in Enum.GetValues<Format>())
            foreach (var path in SupportedPaths)
                foreach (var (rows, n, k) in shapes) data.Add(format, path, rows, n, k);
        return data;
    }

    public static IEnumerable<KernelPath> SupportedPaths => Enum.GetValues<KernelPath>().Where(KernelPaths.IsSupported);

    public static TheoryData<KernelPath> Paths() => [.. SupportedPaths];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Product_equals_the_double_precision_reference(Format format, KernelPath path, int rows, int n, int k)
    {
        var x = LinearMathTests.Random(rows * k, 1);
        var w = Narrow(format, LinearMathTests.Random(n * k, 2));
        var y = new float[rows * n];
        fixed (float* px = x, py = y)
        fixed (ushort* pw = w)
            Multiply(format, px, pw, py, rows, k, n, 0, n, path);
        LinearMathTests.AssertClose(LinearMathTests.Reference(x, Widen(format, w), rows, n, k), y, k);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_column_range_inside_a_block_of_a_wider_output_writes_only_its_cells(KernelPath path)
    {
        // y is [rows, 3 + n + 2]; the product fills columns 3 + first .. 3 + end of each row and nothing else.
        const int n = 11, k = 41, stride = 3 + n + 2, first = 3, end = 10;
        foreach (var format in Enum.GetValues<Format>())
        {
            foreach (var rows in new[] { 1, 7 })
            {
                var x = LinearMathTests.Random(rows * k, 3);
                var w = Narrow(format, LinearMathTests.Random(n * k, 4));
                var y = Enumerable.Repeat(float.NaN, rows * stride).ToArray();
                fixed (float* px = x, py = y)
                fixed (ushort* pw = w)
                    Multiply(format, px, pw, py + 3, rows, k, stride, first, end, path);
                var expected = LinearMathTests.Reference(x, Widen(format, w), rows, n, k);
                for (var r = 0; r < rows; r++)
                {
                    for (var c = 0; c < stride; c++)
                    {
                        var actual = y[r * stride + c];
                        if (c >= 3 + first && c < 3 + end)
                            Assert.True(Math.Abs(actual - expected[r * n + c - 3]) <= 1e-4f, $"{format}, {rows} rows: y[{r},{c}] = {actual}, expected {expected[r * n + c - 3]}");
                        else Assert.True(float.IsNaN(actual), $"{format}, {rows} rows: y[{r},{c}] outside the range was written");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_rows_result_is_bit_for_bit_the_same_however_the_rows_are_split_between_several_row_calls(KernelPath path)
    {
        // As a prompt prefilled in chunks (Serving/BatchedDecoder): rows 0..13 in one call, then in calls of
        // 2, 3, 7 and 2 rows, which put each row at another place in the tiles.
        const int rows = 14, n = 10, k = 2071;
        foreach (var format in Enum.GetValues<Format>())
        {
            var x = LinearMathTests.Random(rows * k, 7);
            var w = Narrow(format, LinearMathTests.Random(n * k, 8));
            var whole = new float[rows * n];
            var split = new float[rows * n];
            fixed (float* px = x, pwhole = whole, psplit = split)
            fixed (ushort* pw = w)
            {
                Multiply(format, px, pw, pwhole, rows, k, n, 0, n, path);
                var start = 0;
                foreach (var count in new[] { 2, 3, 7, 2 })
                {
                    Multiply(format, px + start * k, pw, psplit + start * n, count, k, n, 0, n, path);
                    start += count;
                }
            }
            for (var i = 0; i < whole.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(whole[i]) == BitConverter.SingleToInt32Bits(split[i]), $"{format}, element {i}: {split[i]} split, {whole[i]} whole");
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Every_16_bit_pattern_is_read_as_its_exact_value(KernelPath path)
    {
        // One weight row holding all 65,536 patterns (subnormals, infinities and NaNs included), each
        // picked out by a one-hot x: y[j] is weight j times 1, so the read value itself. One input row
        // (converted in registers) and two (widened into a panel).
        foreach (var (format, rows) in Enum.GetValues<Format>().SelectMany(f => new[] { (f, 1), (f, 2) }))
        {
            var w = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
            const int k = 40;
            for (var offset = 0; offset < w.Length; offset += k)
            {
                var count = Math.Min(k, w.Length - offset);
                var row = new ushort[count * count];
                for (var j = 0; j < count; j++) row[j * count + j] = w[offset + j];
                var x = new float[rows * count];
                var y = new float[rows * count];
                Array.Fill(x, 1f);
                fixed (float* px = x, py = y)
                fixed (ushort* pw = row)
                    Multiply(format, px, pw, py, rows, count, count, 0, count, path);
                for (var j = 0; j < rows * count; j++)
                {
                    var expected = format == Format.BFloat16 ? FloatConversion.BFloat16ToSingle(w[offset + j % count]) : (float)BitConverter.UInt16BitsToHalf(w[offset + j % count]);
                    Assert.True(expected.Equals(y[j]) || (float.IsNaN(expected) && float.IsNaN(y[j])),
                        $"{format}, {rows} rows, pattern 0x{offset + j % count:X4}: read {y[j]}, exact {expected}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Every_finite_f16_weight_is_read_exactly_in_the_placed_form(KernelPath path)
    {
        // Every finite f16 pattern (zeros and subnormals included, both signs), 64 to a weight row, so every row is
        // read in the placed form against x times 2^112 (Every_16_bit_pattern_is_read_as_its_exact_value has the
        // infinities and NaNs, whose rows are read again with the full steps). A one-hot x picks out one column at a
        // time, so y[j] is that weight's value; one input row per call, the loops that read the placed form.
        var finite = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).Where(h => (h & 0x7C00) != 0x7C00).ToArray();
        const int k = 64;
        var n = finite.Length / k;
        var w = finite[..(n * k)];
        var x = new float[k];
        var y = new float[n];
        for (var c = 0; c < k; c++)
        {
            Array.Clear(x);
            x[c] = 1;
            fixed (float* px = x, py = y)
            fixed (ushort* pw = w)
                Multiply(Format.Float16, px, pw, py, 1, k, n, 0, n, path);
            for (var j = 0; j < n; j++)
            {
                var expected = (float)BitConverter.UInt16BitsToHalf(w[j * k + c]);
                if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(y[j]) && !(expected == 0 && y[j] == 0))
                    Assert.Fail($"pattern 0x{w[j * k + c]:X4} (row {j}, column {c}): read {y[j]}, exact {expected}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Inputs_of_any_magnitude_give_the_products_of_the_full_steps(KernelPath path)
    {
        // The placed form multiplies x by 2^112: x up to 2^15 keeps that power, larger x a smaller one, and x holding
        // an infinity or NaN is read with the full steps. One input row, every weight a finite f16.
        const int n = 6, k = 100;
        var w = Narrow(Format.Float16, LinearMathTests.Random(n * k, 11));
        foreach (var largest in new[] { 1e-30f, 1f, 32767f, 32768f, 1e20f, 3e38f, float.PositiveInfinity, float.NaN })
        {
            var x = LinearMathTests.Random(k, 12).Select(v => v * 1e-3f).ToArray();
            x[37] = largest;
            x[90] = -largest / 3;
            var y = new float[n];
            fixed (float* px = x, py = y)
            fixed (ushort* pw = w)
                Multiply(Format.Float16, px, pw, py, 1, k, n, 0, n, path);
            var widened = Widen(Format.Float16, w);
            for (var j = 0; j < n; j++)
            {
                var exact = 0.0;
                for (var i = 0; i < k; i++) exact += (double)widened[j * k + i] * x[i];
                if (double.IsNaN(exact) || double.IsInfinity(exact)) Assert.Equal((float)exact, y[j]);
                else Assert.True(Math.Abs(y[j] - exact) <= 1e-5 * Math.Abs(exact) + 1e-35, $"largest |x| {largest}, y[{j}] = {y[j]}, exact {exact}");
            }
        }
    }

    [Fact]
    public void A_path_the_machine_lacks_is_refused()
    {
        var missing = Enum.GetValues<KernelPath>().Where(p => !KernelPaths.IsSupported(p)).ToList();
        Assert.True(KernelPaths.IsSupported(KernelPaths.Best));
        Assert.True(KernelPaths.IsSupported(KernelPath.Portable));
        foreach (var path in missing)
        {
            Assert.Throws<PlatformNotSupportedException>(() =>
            {
                float x = 1, y = 0;
                ushort w = 0x3C00;
                HalfLinearMath<HalfWeights>.Multiply(&x, &w, &y, 1, 1, 1, 0, 1, path);
            });
        }
    }

    internal static ushort[] Narrow(Format format, float[] values) => format == Format.BFloat16
        ? [.. values.Select(FloatConversion.SingleToBFloat16)]
        : [.. values.Select(v => BitConverter.HalfToUInt16Bits((Half)v))];

    internal static float[] Widen(Format format, ushort[] bits) => format == Format.BFloat16
        ? [.. bits.Select(FloatConversion.BFloat16ToSingle)]
        : [.. bits.Select(b => (float)BitConverter.UInt16BitsToHalf(b))];

    private static void Multiply(Format format, float* x, ushort* w, float* y, int rows, int k, int yStride, int first, int end, KernelPath path)
    {
        if (format == Format.BFloat16) HalfLinearMath<BFloat16Weights>.Multiply(x, w, y, rows, k, yStride, first, end, path);
        else HalfLinearMath<HalfWeights>.Multiply(x, w, y, rows, k, yStride, first, end, path);
    }
}
