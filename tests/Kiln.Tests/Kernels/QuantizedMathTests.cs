using Kiln.Kernels;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>Every instruction-set path of the quantized product, its integer panels, and the float panels of several-row int8 products, called directly, on awkward shapes.</summary>
public sealed unsafe class QuantizedMathTests
{
    public static TheoryData<QuantizedPath, QuantScheme, int, int, int, int, int> Cases()
    {
        var data = new TheoryData<QuantizedPath, QuantScheme, int, int, int, int, int>();
        foreach (var path in Enum.GetValues<QuantizedPath>().Where(QuantizedMath.IsSupported))
        {
            foreach (var scheme in Enum.GetValues<QuantScheme>())
            {
                // rows, n, k, first, end
                data.Add(path, scheme, 1, 1, 32, 0, 1);          // one block
                data.Add(path, scheme, 1, 37, 45, 0, 37);        // odd n, short last block
                data.Add(path, scheme, 1, 301, 515, 5, 298);     // a column range inside the weight
                data.Add(path, scheme, 1, 9, 4113, 0, 9);        // long row, odd block count
                data.Add(path, scheme, 7, 13, 172, 0, 13);       // tiles of 4 rows with one left over
                data.Add(path, scheme, 3, 10, 96, 3, 9);         // several rows, a range cutting tiles
                data.Add(path, scheme, 64, 5, 64, 0, 5);         // many rows
                data.Add(path, scheme, 9, 11, 777, 0, 11);       // several rows, steps of eight blocks and a short last block
                data.Add(path, scheme, 40, 3, 7000, 0, 3);       // more block sums Σqx than go on the stack
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Product_is_within_the_activation_quantization_bound_of_the_exact_product(QuantizedPath path, QuantScheme scheme, int rows, int n, int k, int first, int end)
    {
        var x = LinearMathTests.Random(rows * k, 1);
        // Heavier-tailed x in some blocks, so the per-block scales differ.
        for (var i = 0; i < x.Length; i += 29) x[i] *= 9;
        var (packed, dequantized) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 2), n, k, scheme);

        var y = Multiply(path, scheme, x, packed, rows, n, k, first, end);

        QuantizedProduct.AssertClose(x, dequantized, y, rows, n, k, first, end);
        // Columns outside the range are not written.
        for (var r = 0; r < rows; r++)
            for (var j = 0; j < n; j++)
                if (j < first || j >= end) Assert.True(float.IsNaN(y[r * n + j]), $"row {r}, column {j} was written");
    }

    [Theory]
    [InlineData(QuantScheme.Int8, 5)]
    [InlineData(QuantScheme.Int4Sym, 5)]
    [InlineData(QuantScheme.Int4, 5)]
    [InlineData(QuantScheme.Int8, 9)]     // integer panels on the vector paths
    [InlineData(QuantScheme.Int4Sym, 9)]
    [InlineData(QuantScheme.Int4, 9)]
    [InlineData(QuantScheme.Int8, 1)]     // one row: int8 (VNNI) and int4_sym as unsigned bytes with a Σx correction
    [InlineData(QuantScheme.Int4Sym, 1)]
    [InlineData(QuantScheme.Int4, 1)]
    public void Every_supported_path_gives_the_portable_result(QuantScheme scheme, int rows)
    {
        const int n = 23, k = 300;
        var x = LinearMathTests.Random(rows * k, 3);
        var (packed, _) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 4), n, k, scheme);
        var portable = Multiply(QuantizedPath.Portable, scheme, x, packed, rows, n, k, 0, n);
        foreach (var path in Enum.GetValues<QuantizedPath>().Where(QuantizedMath.IsSupported))
        {
            // The same integer block sums; only the order of the float additions differs.
            var y = Multiply(path, scheme, x, packed, rows, n, k, 0, n);
            for (var i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - portable[i]) <= 1e-4f * (1 + Math.Abs(portable[i])), $"{path}, element {i}: {y[i]} vs {portable[i]}");
        }
    }

    public static TheoryData<KernelPath, QuantScheme, int, int, int, int, int> PanelCases()
    {
        var data = new TheoryData<KernelPath, QuantScheme, int, int, int, int, int>();
        foreach (var tile in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)))
        {
            foreach (var scheme in Enum.GetValues<QuantScheme>())
            {
                // rows, n, k, first, end
                data.Add(tile, scheme, 1, 5, 45, 0, 5);          // one row, a short last block
                data.Add(tile, scheme, 7, 13, 515, 0, 13);       // six (or two threes) and one, a short last panel
                data.Add(tile, scheme, 33, 10, 2080, 3, 9);      // slices of 1024 over k, a range cutting panels
                data.Add(tile, scheme, 13, 9, 4113, 0, 9);       // long rows, a one-value last block
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PanelCases))]
    public void Float_panels_give_the_float_product_with_the_dequantized_weight(KernelPath tile, QuantScheme scheme, int rows, int n, int k, int first, int end)
    {
        var x = LinearMathTests.Random(rows * k, 1);
        var (packed, dequantized) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 2), n, k, scheme);

        var y = MultiplyPanels(tile, scheme, x, packed, rows, n, k, first, end);

        // No activation quantization: the float tolerance of the float kernels, far inside the quantized bound.
        var expected = LinearMathTests.Reference(x, dequantized, rows, n, k);
        var tolerance = 1e-5f * Math.Max(k, 8) * dequantized.Max(Math.Abs);
        for (var r = 0; r < rows; r++)
            for (var j = 0; j < n; j++)
            {
                var actual = y[r * n + j];
                if (j < first || j >= end) Assert.True(float.IsNaN(actual), $"row {r}, column {j} was written");
                else Assert.True(Math.Abs(actual - expected[r * n + j]) <= tolerance, $"row {r}, column {j}: {actual}, expected {expected[r * n + j]}");
            }
    }

    [Fact]
    public void Panel_rows_are_bit_for_bit_the_same_however_the_rows_are_split_between_calls()
    {
        const int rows = 40, n = 9, k = 1100;
        var x = LinearMathTests.Random(rows * k, 3);
        var (packed, _) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 4), n, k, QuantScheme.Int8);
        foreach (var tile in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Portable && KernelPaths.IsSupported(p)))
        {
            var whole = MultiplyPanels(tile, QuantScheme.Int8, x, packed, rows, n, k, 0, n);
            var split = new List<float>();
            for (var (start, count) = (0, 33); start < rows; (start, count) = (start + count, rows - start - count))
                split.AddRange(MultiplyPanels(tile, QuantScheme.Int8, x[(start * k)..((start + count) * k)], packed, count, n, k, 0, n));
            Assert.Equal(whole.Select(BitConverter.SingleToInt32Bits), split.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void Several_rows_take_integer_panels_and_int8_without_vnni_or_avx512_float_panels_from_32_rows()
    {
        var wide = KernelPaths.Best == KernelPath.Avx512;
        foreach (var path in Enum.GetValues<QuantizedPath>())
        {
            var vector = path != QuantizedPath.Portable;
            var rows = QuantizedMath.IntegerPanelMinRows;
            Assert.Equal(vector, QuantizedMath.UsesIntegerPanels(path, QuantScheme.Int4, rows));
            Assert.Equal(vector, QuantizedMath.UsesIntegerPanels(path, QuantScheme.Int4Sym, rows));
            Assert.Equal(path == QuantizedPath.AvxVnni || (vector && wide), QuantizedMath.UsesIntegerPanels(path, QuantScheme.Int8, rows));
            Assert.False(QuantizedMath.UsesIntegerPanels(path, QuantScheme.Int4, rows - 1));
            Assert.Equal(path == QuantizedPath.Avx2 && !wide, QuantizedMath.UsesPanels(path, QuantScheme.Int8, QuantizedMath.Int8PanelMinRows));
            Assert.False(QuantizedMath.UsesPanels(path, QuantScheme.Int8, QuantizedMath.Int8PanelMinRows - 1));
            Assert.False(QuantizedMath.UsesPanels(path, QuantScheme.Int4, 64));
            Assert.False(QuantizedMath.UsesPanels(path, QuantScheme.Int4Sym, 64));
        }
    }

    public static TheoryData<QuantizedPath, KernelPath, QuantScheme, int, int, int, int, int> IntegerPanelCases()
    {
        var data = new TheoryData<QuantizedPath, KernelPath, QuantScheme, int, int, int, int, int>();
        foreach (var (path, tile, scheme) in IntegerPanelPaths())
        {
            // rows, n, k, first, end
            data.Add(path, tile, scheme, 1, 5, 45, 0, 5);         // one row, a short last block, one part-filled panel
            data.Add(path, tile, scheme, 3, 16, 32, 0, 16);       // fewer rows than a group of four, one whole panel
            data.Add(path, tile, scheme, 5, 37, 777, 0, 37);      // a last group of four overlapping the first, a part-filled last panel
            data.Add(path, tile, scheme, 9, 40, 300, 3, 29);      // a column range cutting panels
            data.Add(path, tile, scheme, 40, 33, 4113, 0, 33);    // many rows, long rows, a one-value last block
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(IntegerPanelCases))]
    public void Integer_panels_are_within_the_activation_quantization_bound_of_the_exact_product(QuantizedPath path, KernelPath tile, QuantScheme scheme, int rows, int n, int k, int first, int end)
    {
        var x = LinearMathTests.Random(rows * k, 1);
        for (var i = 0; i < x.Length; i += 29) x[i] *= 9;
        var (packed, dequantized) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 2), n, k, scheme);

        var y = Multiply(path, scheme, x, packed, rows, n, k, first, end, tile);

        QuantizedProduct.AssertClose(x, dequantized, y, rows, n, k, first, end);
        for (var r = 0; r < rows; r++)
            for (var j = 0; j < n; j++)
                if (j < first || j >= end) Assert.True(float.IsNaN(y[r * n + j]), $"row {r}, column {j} was written");
    }

    [Fact]
    public void Integer_panels_sum_a_block_of_largest_values_without_overflow()
    {
        // Per block: one value at the bottom of the range and 31 at the top, so 31 of 32 nibbles are 15 (int4: q = (w − min) / d;
        // int4_sym: d = −8 / −8 = 1 and w = 7 gives q − 8 = 7), against x at +127 and −127 in every position: vpmaddubsw's int16
        // sums over a block reach 16 · 15 · 127 = 30480, just inside 2^15 − 1.
        const int rows = 8, n = 16, k = 64;
        foreach (var (path, tile, scheme) in IntegerPanelPaths())
        {
            var w = new float[n * k];
            for (var i = 0; i < w.Length; i++) w[i] = i % 32 == 0 ? -8 : scheme == QuantScheme.Int4Sym ? 7 : 8;
            var x = new float[rows * k];
            for (var i = 0; i < x.Length; i++) x[i] = i / k % 2 == 0 ? 1 : -1;
            var (packed, dequantized) = QuantizedProduct.Pack(w, n, k, scheme);

            var y = Multiply(path, scheme, x, packed, rows, n, k, 0, n, tile);

            QuantizedProduct.AssertClose(x, dequantized, y, rows, n, k, 0, n);
        }
    }

    [Fact]
    public void Integer_panel_rows_are_bit_for_bit_the_same_however_the_rows_are_split_between_calls()
    {
        // The last group of four rows overlaps the one before it, and fewer than four rows are computed four times over:
        // either is right only if a row's result depends on that row alone.
        const int rows = 13, n = 21, k = 520;
        var x = LinearMathTests.Random(rows * k, 5);
        foreach (var (path, tile, scheme) in IntegerPanelPaths())
        {
            var (packed, _) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 6), n, k, scheme);
            var whole = Multiply(path, scheme, x, packed, rows, n, k, 0, n, tile);
            var split = new List<float>();
            foreach (var (start, count) in new[] { (0, 2), (2, 5), (7, 1), (8, 5) })
                split.AddRange(Multiply(path, scheme, x[(start * k)..((start + count) * k)], packed, count, n, k, 0, n, tile));
            Assert.Equal(whole.Select(BitConverter.SingleToInt32Bits), split.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void Integer_panels_give_the_portable_result_on_every_path_and_tile()
    {
        const int rows = 11, n = 23, k = 300;
        var x = LinearMathTests.Random(rows * k, 3);
        foreach (var (path, tile, scheme) in IntegerPanelPaths())
        {
            var (packed, _) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 4), n, k, scheme);
            var portable = Multiply(QuantizedPath.Portable, scheme, x, packed, rows, n, k, 0, n);
            var y = Multiply(path, scheme, x, packed, rows, n, k, 0, n, tile);
            for (var i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - portable[i]) <= 1e-4f * (1 + Math.Abs(portable[i])), $"{path} {tile} {scheme}, element {i}: {y[i]} vs {portable[i]}");
        }
    }

    // Every path, tile and scheme the integer panels take on this machine (int8: with VNNI, or signed on the 512-bit tile).
    private static IEnumerable<(QuantizedPath Path, KernelPath Tile, QuantScheme Scheme)> IntegerPanelPaths() =>
        from path in Enum.GetValues<QuantizedPath>()
        where path != QuantizedPath.Portable && QuantizedMath.IsSupported(path)
        from tile in Enum.GetValues<KernelPath>()
        where tile != KernelPath.Portable && KernelPaths.IsSupported(tile)
        from scheme in Enum.GetValues<QuantScheme>()
        where scheme != QuantScheme.Int8 || path == QuantizedPath.AvxVnni || tile == KernelPath.Avx512
        select (path, tile, scheme);

    [Fact]
    public void Whole_blocks_are_quantized_as_the_scalar_steps_quantize_them()
    {
        // Whole blocks take the vector steps where the machine has AVX2; a plain transcription of the rule
        // (d = max|x| / 127, round x / d to nearest even, clamp to ±127) is the reference. The first block
        // has d = 1 and every other value on a .5 step (ties: even), one block is all zeros, one has a
        // single nonzero.
        const int k = 160;
        var x = LinearMathTests.Random(k * 3, 9);
        x[0] = 127f;
        for (var i = 1; i < 32; i++) x[i] = i - 16 + 0.5f;
        Array.Clear(x, 32, 32);
        Array.Clear(x, 64, 32);
        x[70] = -3f;
        var blocks = k / 32;
        var q = new sbyte[3 * k];
        var d = new float[3 * blocks];
        var sums = new float[3 * blocks];
        fixed (float* px = x, pd = d, ps = sums)
        fixed (sbyte* pq = q)
            QuantizedMath.QuantizeActivations(px, 3, k, pq, pd, ps);
        for (var b = 0; b < 3 * blocks; b++)
        {
            var block = x.AsSpan(b * 32, 32);
            float max = 0;
            foreach (var v in block) max = Math.Max(max, Math.Abs(v));
            var scale = max / 127f;
            Assert.Equal(scale, d[b]);
            var quantizedSum = 0;
            for (var i = 0; i < 32; i++)
            {
                var expected = scale == 0 ? 0 : (sbyte)Math.Clamp(MathF.Round(block[i] * (1 / scale)), -127f, 127f);
                Assert.True(expected == q[b * 32 + i], $"block {b}, value {i}: {q[b * 32 + i]}, expected {expected} (x = {block[i]})");
                quantizedSum += expected;
            }
            // Σx of the quantized values: the x int4's d·q·x term sees.
            Assert.Equal(scale * quantizedSum, sums[b]);
        }
    }

    [Fact]
    public void Activations_are_quantized_per_block_of_32_with_max_over_127_and_zero_padding()
    {
        var x = new float[40];
        x[0] = 127f / 128;   // d = 1/128 exactly
        x[1] = -0.5f / 128;  // −0.5 steps: ties go to even, 0
        x[2] = 1.5f / 128;   // 1.5 steps: 2
        x[33] = -2f;
        var q = new sbyte[64];
        var d = new float[2];
        var sums = new float[2];
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        fixed (float* pd = d)
        fixed (float* ps = sums)
            QuantizedMath.QuantizeActivations(px, 1, 40, pq, pd, ps);

        Assert.Equal(1f / 128, d[0]);
        Assert.Equal(2f / 127, d[1]);
        Assert.Equal([127, 0, 2], q[..3].Select(v => (int)v));
        Assert.Equal(-127, q[33]);
        Assert.All(q[40..], v => Assert.Equal(0, v));
        Assert.Equal([d[0] * (127 + 2), d[1] * -127], sums);
    }

    [Fact]
    public void The_best_path_is_the_widest_the_machine_runs()
    {
        var expected = Enum.GetValues<QuantizedPath>().Where(QuantizedMath.IsSupported).Max();
        Assert.Equal(expected, QuantizedMath.Best);
        Assert.Equal(System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported, QuantizedMath.IsSupported(QuantizedPath.Avx2));
    }

    private static float[] MultiplyPanels(KernelPath tile, QuantScheme scheme, float[] x, byte[] packed, int rows, int n, int k, int first, int end)
    {
        var y = Enumerable.Repeat(float.NaN, rows * n).ToArray();
        fixed (float* px = x, py = y)
        fixed (byte* pw = packed)
            QuantizedMath.MultiplyPanels(tile, scheme, px, pw, py, rows, k, n, first, end);
        return y;
    }

    // The quantized product as the kernel computes it, or always through integer panels on integerPanels.
    internal static float[] Multiply(QuantizedPath path, QuantScheme scheme, float[] x, byte[] packed, int rows, int n, int k, int first, int end, KernelPath? integerPanels = null)
    {
        var blocks = (int)QuantSchemes.Blocks(k);
        var q = new sbyte[rows * blocks * 32];
        var d = new float[rows * blocks];
        var sums = new float[rows * blocks];
        var y = Enumerable.Repeat(float.NaN, rows * n).ToArray();
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        fixed (float* pd = d)
        fixed (float* ps = sums)
        fixed (byte* pw = packed)
        fixed (float* py = y)
        {
            QuantizedMath.QuantizeActivations(px, rows, k, pq, pd, ps);
            if (integerPanels is { } tile) QuantizedMath.MultiplyIntegerPanels(path, tile, scheme, pq, pd, ps, pw, py, rows, k, n, first, end);
            else QuantizedMath.Multiply(path, scheme, pq, pd, ps, pw, py, rows, k, n, first, end);
        }
        return y;
    }
}
