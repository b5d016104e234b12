using Kiln.Weights;

namespace Kiln.Tests.Weights;

/// <summary>
/// Kiln's int8 and int4_sym blocks are ggml's Q8_0 and Q4_0 blocks byte for byte (ggml-common.h:
/// block_q8_0 { ggml_half d; int8_t qs[32]; }, block_q4_0 { ggml_half d; uint8_t qs[16]; } with weight j in
/// the low nibble of qs[j] and weight j + 16 in its high nibble, less 8), which is why a GGUF file's blocks
/// run on Kiln's kernels as they are stored.
/// </summary>
public sealed class GgmlBlockLayoutTests
{
    [Fact]
    public void A_q8_0_block_is_the_f16_scale_then_32_signed_bytes()
    {
        var d = (Half)0.03125f;
        sbyte[] q = [.. Enumerable.Range(0, 32).Select(j => (sbyte)(j == 5 ? -127 : (j * 37 % 255) - 127))];
        byte[] ggml = [.. BitConverter.GetBytes(d), .. q.Select(v => (byte)v)];
        var weights = q.Select(v => (float)d * v).ToArray();

        var packed = new byte[34];
        BlockQuantizer.QuantizeRow(weights, QuantScheme.Int8, packed);
        Assert.Equal(ggml, packed);
        var back = new float[32];
        BlockQuantizer.DequantizeRow(ggml, QuantScheme.Int8, back);
        Assert.Equal(weights, back);
    }

    [Fact]
    public void A_q4_0_block_is_the_f16_scale_then_16_bytes_of_nibbles_less_8()
    {
        var d = (Half)(-0.25f);
        int[] q = [.. Enumerable.Range(0, 32).Select(j => j == 20 ? 0 : (j * 7 + 3) % 16)];
        byte[] ggml = [.. BitConverter.GetBytes(d), .. Enumerable.Range(0, 16).Select(j => (byte)(q[j] | q[j + 16] << 4))];
        // ggml's quantizer maps the value of largest magnitude to -8: d = max / -8.
        var weights = q.Select(v => (float)d * (v - 8)).ToArray();

        var packed = new byte[18];
        BlockQuantizer.QuantizeRow(weights, QuantScheme.Int4Sym, packed);
        Assert.Equal(ggml, packed);
        var back = new float[32];
        BlockQuantizer.DequantizeRow(ggml, QuantScheme.Int4Sym, back);
        Assert.Equal(weights, back);
    }

    [Theory]
    [InlineData(QuantScheme.Int8)]
    [InlineData(QuantScheme.Int4Sym)]
    public void On_random_weights_kilns_quantizer_writes_ggmls_scales_and_nearly_always_its_values(QuantScheme scheme)
    {
        // ggml's reference quantizers (quantize_row_q8_0_ref, quantize_row_q4_0_ref) divide by the f32 scale; Kiln
        // divides by the scale as rounded to f16, the one every reader uses, so a value on a rounding edge can land one step away.
        var random = new Random(3);
        int values = 0, differ = 0;
        for (var block = 0; block < 2000; block++)
        {
            var weights = Enumerable.Range(0, 32).Select(_ => (float)(random.NextDouble() * 2 - 1) * MathF.Pow(2, random.Next(-8, 4))).ToArray();
            var kiln = new byte[scheme.BlockBytes()];
            BlockQuantizer.QuantizeRow(weights, scheme, kiln);
            var ggml = scheme == QuantScheme.Int8 ? GgmlQ8_0(weights) : GgmlQ4_0(weights);
            Assert.Equal(ggml[..2], kiln[..2]);
            var (a, b) = (Values(kiln, scheme), Values(ggml, scheme));
            for (var j = 0; j < 32; j++)
            {
                Assert.InRange(a[j] - b[j], -1, 1);
                values++;
                if (a[j] != b[j]) differ++;
            }
        }
        Assert.True(differ < values / 100, $"{differ} of {values} values differ");
    }

    // ggml-quants.c's quantize_row_q8_0_ref, for one block.
    private static byte[] GgmlQ8_0(float[] x)
    {
        var amax = x.Max(MathF.Abs);
        var d = amax / 127;
        var id = d != 0 ? 1 / d : 0;
        return [.. BitConverter.GetBytes((Half)d), .. x.Select(v => (byte)(sbyte)MathF.Round(v * id, MidpointRounding.AwayFromZero))];
    }

    // ggml-quants.c's quantize_row_q4_0_ref, for one block.
    private static byte[] GgmlQ4_0(float[] x)
    {
        var max = x.MaxBy(MathF.Abs);
        var d = max / -8;
        var id = d != 0 ? 1 / d : 0;
        int Q(float v) => Math.Min(15, (int)(sbyte)(v * id + 8.5f));
        return [.. BitConverter.GetBytes((Half)d), .. Enumerable.Range(0, 16).Select(j => (byte)(Q(x[j]) | Q(x[j + 16]) << 4))];
    }

    private static int[] Values(byte[] block, QuantScheme scheme) => scheme == QuantScheme.Int8
        ? [.. block[2..].Select(b => (int)(sbyte)b)]
        : [.. Enumerable.Range(0, 32).Select(j => j < 16 ? block[2 + j] & 0xF : block[2 + j - 16] >> 4)];
}
