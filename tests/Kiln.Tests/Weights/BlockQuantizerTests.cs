using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Weights;

/// <summary>The quantize recipe step against blocks computed by hand: scales, rounding, nibble order, padding, zero blocks.</summary>
public sealed class BlockQuantizerTests
{
    // 2^-7: an f16 scale with no rounding, so every expected q below is exact arithmetic.
    private const float Step = 1f / 128;

    [Fact]
    public void Int8_block_is_the_f16_scale_then_rounded_signed_bytes()
    {
        var row = new float[32];
        row[0] = 127 * Step;     // the largest magnitude: d = 127·Step / 127 = Step
        row[1] = 2.5f * Step;    // a tie rounds away from zero
        row[2] = -2.5f * Step;
        row[3] = 0.4f * Step;
        row[4] = -100.6f * Step;
        var packed = new byte[34];

        BlockQuantizer.QuantizeRow(row, QuantScheme.Int8, packed);

        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)Step), BitConverter.ToUInt16(packed, 0));
        Assert.Equal([127, 3, -3, 0, -101], packed[2..7].Select(b => (int)(sbyte)b));
        Assert.All(packed[7..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Int8_scale_is_rounded_to_f16_before_the_values_are_divided()
    {
        // max 1.27: d = 0.01 rounds to the f16 1311/131072; values are quantized against that d.
        var row = new float[32];
        row[0] = 1.27f;
        row[1] = -0.635f;
        var packed = new byte[34];

        BlockQuantizer.QuantizeRow(row, QuantScheme.Int8, packed);

        var d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(packed, 0));
        Assert.Equal(1311f / 131072, d);
        Assert.Equal(127, (sbyte)packed[2]);
        Assert.Equal((int)MathF.Round(-0.635f / d, MidpointRounding.AwayFromZero), (sbyte)packed[3]);
    }

    [Fact]
    public void Int4Sym_block_maps_the_signed_extreme_to_minus_eight_and_packs_value_j_with_j_plus_16()
    {
        var row = new float[32];
        row[0] = -8 * 0.125f;   // extreme, negative: d = −1 / −8 = 0.125 and q = 0
        row[1] = 7 * 0.125f;    // q = 15
        row[2] = 0.5f * 0.125f; // w/d + 8.5 = 9: q = 9
        row[3] = -0.5f * 0.125f; // 8
        row[16] = 3 * 0.125f;   // 11, the high nibble of byte 0
        row[17] = -3 * 0.125f;  // 5, the high nibble of byte 1
        var packed = new byte[18];

        BlockQuantizer.QuantizeRow(row, QuantScheme.Int4Sym, packed);

        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)0.125f), BitConverter.ToUInt16(packed, 0));
        Assert.Equal(0x00 | 11 << 4, packed[2]);
        Assert.Equal(15 | 5 << 4, packed[3]);
        Assert.Equal(9 | 8 << 4, packed[4]);
        Assert.Equal(8 | 8 << 4, packed[5]);
        Assert.All(packed[6..], b => Assert.Equal(0x88, b));
    }

    [Fact]
    public void Int4Sym_positive_extreme_gets_a_negative_scale()
    {
        var row = new float[32];
        row[5] = 1f;
        row[6] = -0.25f;
        var packed = new byte[18];

        BlockQuantizer.QuantizeRow(row, QuantScheme.Int4Sym, packed);

        Assert.Equal(-0.125f, (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(packed, 0)));
        Assert.Equal(0, packed[2 + 5] & 0xF);   // 1 / −0.125 + 8.5 = 0.5
        Assert.Equal(10, packed[2 + 6] & 0xF);  // −0.25 / −0.125 + 8.5 = 10.5
        var back = new float[32];
        BlockQuantizer.DequantizeRow(packed, QuantScheme.Int4Sym, back);
        Assert.Equal(1f, back[5]);
        Assert.Equal(-0.25f, back[6]);
    }

    [Fact]
    public void Int4_block_is_scale_and_minimum_then_steps_above_the_minimum()
    {
        var row = new float[32];
        row[0] = -1f;                 // the minimum: m = −1, d = (0.875 + 1) / 15 = 0.125
        row[1] = 0.875f;              // q = 15
        row[2] = 0.0625f;             // 8.5 steps above m: rounds away from zero, 9
        row[16] = -0.75f;             // 2, the high nibble of byte 0
        var packed = new byte[20];

        BlockQuantizer.QuantizeRow(row, QuantScheme.Int4, packed);

        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)0.125f), BitConverter.ToUInt16(packed, 0));
        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)(-1f)), BitConverter.ToUInt16(packed, 2));
        Assert.Equal(0 | 2 << 4, packed[4]);
        Assert.Equal(15 | 8 << 4, packed[5]);   // row[17] = 0: 8 steps
        Assert.Equal(9 | 8 << 4, packed[6]);
        var back = new float[32];
        BlockQuantizer.DequantizeRow(packed, QuantScheme.Int4, back);
        Assert.Equal([-1f, 0.875f, 0.125f], back[..3]);
        Assert.Equal(0f, back[17]);
    }

    [Theory]
    [InlineData(QuantScheme.Int8, 34)]
    [InlineData(QuantScheme.Int4Sym, 18)]
    [InlineData(QuantScheme.Int4, 20)]
    public void A_short_last_block_is_padded_with_zeros_and_an_all_zero_block_has_scale_zero(QuantScheme scheme, int blockBytes)
    {
        // k = 72: blocks of 32, 32 (all zero) and 8 (+ 24 of padding).
        var row = new float[72];
        for (var i = 0; i < 32; i++) row[i] = (i - 16) * Step;
        for (var i = 64; i < 72; i++) row[i] = (i - 70) * Step;
        // Each block's largest magnitude 127 steps: int8's scale is exactly Step.
        row[0] = row[64] = -127 * Step;
        var packed = new byte[3 * blockBytes];
        Assert.Equal(packed.Length, scheme.RowBytes(72));

        BlockQuantizer.QuantizeRow(row, scheme, packed);

        var zero = packed.AsSpan(blockBytes, blockBytes);
        Assert.Equal(0, BitConverter.ToUInt16(zero[..2]));
        var values = scheme == QuantScheme.Int4 ? 4 : 2;
        if (scheme == QuantScheme.Int4) Assert.Equal(0, BitConverter.ToUInt16(zero[2..4]));
        Assert.All(zero[values..].ToArray(), b => Assert.Equal(scheme == QuantScheme.Int4Sym ? 0x88 : 0, b));
        var back = new float[72];
        BlockQuantizer.DequantizeRow(packed, scheme, back);
        Assert.All(back[32..64], v => Assert.Equal(0f, v));
        // The padding quantizes as zeros: int8 bytes 0, int4_sym nibbles 8, int4 the level of 0 (here the top one, 15).
        var last = packed.AsSpan(2 * blockBytes + values).ToArray();
        if (scheme == QuantScheme.Int8) Assert.All(last[8..], b => Assert.Equal(0, b));
        else Assert.All(last, b => Assert.Equal(scheme == QuantScheme.Int4Sym ? 8 : 15, b >> 4));
        // Values on the block's own grid come back exactly.
        if (scheme == QuantScheme.Int8) Assert.Equal(row, back);
    }

    [Theory]
    [InlineData(QuantScheme.Int8, 1f / 254)]
    [InlineData(QuantScheme.Int4Sym, 1f / 8)]
    [InlineData(QuantScheme.Int4, 1f / 15)]
    public void Dequantized_random_weights_are_within_the_scheme_s_error_bound(QuantScheme scheme, float ofMax)
    {
        var random = new Random(3);
        var row = Enumerable.Range(0, 200).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var packed = new byte[scheme.RowBytes(row.Length)];
        BlockQuantizer.QuantizeRow(row, scheme, packed);
        var back = new float[row.Length];
        BlockQuantizer.DequantizeRow(packed, scheme, back);
        for (var b = 0; b < row.Length; b += 32)
        {
            var block = row.Skip(b).Take(32).ToArray();
            // int8: half a step of d = max/127. int4_sym: a whole step of d = max/8, at the clamped end
            // (q = 15 is +7 steps when the extreme is −8 steps). int4: half a step of (max − min)/15
            // ≤ 2·max/15 (also the f16 rounding of m). Plus the f16 rounding of d.
            var bound = block.Max(Math.Abs) * ofMax * 1.01f;
            for (var i = 0; i < block.Length; i++) Assert.True(Math.Abs(back[b + i] - block[i]) <= bound, $"weight {b + i}: {row[b + i]} came back as {back[b + i]}");
        }
    }

    [Fact]
    public void A_weight_that_is_not_finite_is_refused_naming_its_row_and_block()
    {
        var row = new float[40];
        row[35] = float.NaN;
        var error = Assert.Throws<KilnException>(() => BlockQuantizer.QuantizeRow(row, QuantScheme.Int8, new byte[68]));
        Assert.Contains("block 1 (inputs 32..39)", error.Message);
    }

    [Theory]
    [InlineData(QuantScheme.Int8)]
    [InlineData(QuantScheme.Int4Sym)]
    [InlineData(QuantScheme.Int4)]
    public void The_recipe_step_gives_the_same_blocks_from_f32_f16_and_bf16_sources(QuantScheme scheme)
    {
        // Multiples of 2^-7 below 2: exact in all three dtypes. 5 rows of k = 45 (a short last block).
        const int n = 5, k = 45;
        var values = Enumerable.Range(0, n * k).Select(i => ((i * 37 % 101) - 50) * Step).ToArray();
        using var dir = new TempDir();
        CraftedFiles.Checkpoint(dir.Path,
            (new SafetensorsEntry("w32", DType.F32, [n, k]), CraftedFiles.Floats(values)),
            (new SafetensorsEntry("w16", DType.F16, [n, k]), MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray()),
            (new SafetensorsEntry("wbf", DType.BF16, [n, k]), MemoryMarshal.AsBytes(values.Select(FloatConversion.SingleToBFloat16).ToArray().AsSpan()).ToArray()));
        using var checkpoint = Checkpoint.Open(dir.Path);
        var expected = new byte[n * scheme.RowBytes(k)];
        for (var r = 0; r < n; r++)
            BlockQuantizer.QuantizeRow(values.AsSpan(r * k, k), scheme, expected.AsSpan(r * (int)scheme.RowBytes(k), (int)scheme.RowBytes(k)));

        foreach (var source in new[] { "w32", "w16", "wbf" })
        {
            var recipe = LoadRecipe.FromSource(source).Then(new QuantizeStep(scheme));
            var (dtype, shape) = RecipeShapes.Infer([checkpoint.Tensors[source]], recipe);
            Assert.Equal(DType.U8, dtype);
            Assert.Equal([n, scheme.RowBytes(k)], shape);
            using var data = RecipeExecutor.Execute(checkpoint, "p", recipe, DType.U8, [n, scheme.RowBytes(k)]);
            Assert.True(data.IsCopy);
            Assert.Equal(expected, data.Bytes.ToArray());
        }
    }

    [Fact]
    public void Quantizing_on_all_threads_reports_every_weight_once()
    {
        const int n = 1000, k = 70;
        var values = Enumerable.Range(0, n * k).Select(i => MathF.Sin(i)).ToArray();
        var packed = new byte[n * QuantScheme.Int4Sym.RowBytes(k)];
        long reported = 0;
        unsafe
        {
            fixed (float* source = values)
            fixed (byte* target = packed)
                BlockQuantizer.Quantize(DType.F32, source, n, k, QuantScheme.Int4Sym, target, done => Interlocked.Add(ref reported, done));
        }
        Assert.Equal((long)n * k, reported);
        var row = new byte[QuantScheme.Int4Sym.RowBytes(k)];
        BlockQuantizer.QuantizeRow(values.AsSpan(777 * k, k), QuantScheme.Int4Sym, row);
        Assert.Equal(row, packed.AsSpan(777 * row.Length, row.Length).ToArray());
    }

    [Fact]
    public void The_step_needs_a_2d_float_tensor_and_round_trips_through_json()
    {
        var ids = new TensorInfo("ids", DType.I32, [4, 32], "f.safetensors", 0, 0);
        var error = Assert.Throws<KilnException>(() => RecipeShapes.Infer([ids], LoadRecipe.FromSource("ids").Then(new QuantizeStep(QuantScheme.Int8))));
        Assert.Contains("quantize(int8): needs a 2-D f32, f16 or bf16 tensor, found i32 [4, 32]", error.Message);

        var recipe = new LoadRecipe(["a", "b"], [new ConcatStep(0), new QuantizeStep(QuantScheme.Int4Sym)]);
        var json = System.Text.Json.JsonSerializer.Serialize(recipe, Kiln.Graph.Json.GraphJsonContext.Default.LoadRecipe);
        Assert.Contains("{\"op\":\"quantize\",\"scheme\":\"int4_sym\"}", string.Concat(json.Where(c => !char.IsWhiteSpace(c))));
        Assert.Equal(recipe.ToString(), System.Text.Json.JsonSerializer.Deserialize(json, Kiln.Graph.Json.GraphJsonContext.Default.LoadRecipe)!.ToString());
        Assert.True(LoadRecipe.SchemaVersion >= 2, "the quantize step came with recipe schema 2");
    }

    [Fact]
    public void A_checkpoint_weight_that_is_not_finite_fails_the_load_naming_the_folder_parameter_step_row_and_block()
    {
        var values = new float[2 * 40];
        values[40 + 35] = float.PositiveInfinity;
        using var dir = new TempDir();
        CraftedFiles.Checkpoint(dir.Path, (new SafetensorsEntry("w", DType.F32, [2, 40]), CraftedFiles.Floats(values)));
        using var checkpoint = Checkpoint.Open(dir.Path);

        var error = Assert.Throws<KilnException>(() =>
            RecipeExecutor.Execute(checkpoint, "layer.weight", LoadRecipe.FromSource("w").Then(new QuantizeStep(QuantScheme.Int8)), DType.U8, [2, 68]));

        Assert.Equal($"{dir.Path}: layer.weight: quantize(int8): row 1: block 1 (inputs 32..39): weight Infinity is not finite", error.Message);
    }
}
