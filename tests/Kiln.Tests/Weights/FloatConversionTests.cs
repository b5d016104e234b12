using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Weights;

public sealed class FloatConversionTests
{
    [Theory]
    [InlineData(0x3F80, 1f)]
    [InlineData(0xC000, -2f)]
    [InlineData(0x3E80, 0.25f)]
    [InlineData(0x0000, 0f)]
    [InlineData(0x7F80, float.PositiveInfinity)]
    [InlineData(0xFF80, float.NegativeInfinity)]
    [InlineData(0x7F7F, 3.3895314e38f)]
    public void BFloat16KnownValues(int bits, float value)
    {
        Assert.Equal(value, FloatConversion.BFloat16ToSingle((ushort)bits));
        Assert.Equal((ushort)bits, FloatConversion.SingleToBFloat16(value));
    }

    [Fact]
    public void BFloat16SubnormalAndNegativeZeroAreExact()
    {
        Assert.Equal(MathF.Pow(2, -133), FloatConversion.BFloat16ToSingle(0x0001));
        Assert.Equal(0x8000_0000u, BitConverter.SingleToUInt32Bits(FloatConversion.BFloat16ToSingle(0x8000)));
    }

    [Theory]
    [InlineData(0x3F80_8000u, 0x3F80)] // 1 + 2^-8, halfway: ties to the even 1.0
    [InlineData(0x3F81_8000u, 0x3F82)] // halfway above an odd value: rounds up to even
    [InlineData(0x3F80_8001u, 0x3F81)] // just above halfway
    [InlineData(0x3F80_7FFFu, 0x3F80)] // just below halfway
    [InlineData(0x7F7F_FFFFu, 0x7F80)] // float.MaxValue rounds past the largest bf16 to infinity
    [InlineData(0xBF80_8000u, 0xBF80)] // negative tie
    public void SingleToBFloat16RoundsToNearestEven(uint single, int expected)
    {
        Assert.Equal((ushort)expected, FloatConversion.SingleToBFloat16(BitConverter.UInt32BitsToSingle(single)));
    }

    [Theory]
    [InlineData(0x7F80_0001u)] // NaN whose payload is only in the low bits: truncation alone would give infinity
    [InlineData(0x7FFF_FFFFu)] // rounding up would carry out of the exponent
    [InlineData(0xFFC0_0000u)]
    public void NaNStaysNaN(uint nan)
    {
        var bits = FloatConversion.SingleToBFloat16(BitConverter.UInt32BitsToSingle(nan));
        Assert.True(float.IsNaN(FloatConversion.BFloat16ToSingle(bits)));
        Span<ushort> vector = stackalloc ushort[32];
        FloatConversion.SingleToBFloat16(Enumerable.Repeat(BitConverter.UInt32BitsToSingle(nan), 32).ToArray(), vector);
        Assert.All(vector.ToArray(), b => Assert.True(float.IsNaN(FloatConversion.BFloat16ToSingle(b))));
    }

    [Fact]
    public void EveryBFloat16RoundTripsThroughSingle()
    {
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var singles = new float[all.Length];
        var back = new ushort[all.Length];

        FloatConversion.BFloat16ToSingle(all, singles);
        FloatConversion.SingleToBFloat16(singles, back);

        for (var i = 0; i < all.Length; i++)
        {
            Assert.Equal((uint)all[i] << 16, BitConverter.SingleToUInt32Bits(singles[i]));
            if (float.IsNaN(singles[i])) Assert.True(float.IsNaN(FloatConversion.BFloat16ToSingle(back[i])));
            else Assert.Equal(all[i], back[i]);
        }
    }

    [Fact]
    public void SpanConversionMatchesScalarOnEveryLength()
    {
        var random = new Random(7);
        for (var length = 0; length < 70; length++)
        {
            var values = Enumerable.Range(0, length).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32))).ToArray();
            var bf16 = new ushort[length];
            var widened = new float[length];
            FloatConversion.SingleToBFloat16(values, bf16);
            FloatConversion.BFloat16ToSingle(bf16, widened);
            for (var i = 0; i < length; i++)
            {
                var scalar = FloatConversion.SingleToBFloat16(values[i]);
                if (float.IsNaN(values[i])) Assert.True(float.IsNaN(widened[i]));
                else Assert.Equal(scalar, bf16[i]);
                Assert.Equal(FloatConversion.BFloat16ToSingle(bf16[i]), widened[i]);
            }
        }
    }

    [Theory]
    [InlineData(0x3C00, 1f)]
    [InlineData(0xC000, -2f)]
    [InlineData(0x7BFF, 65504f)]
    [InlineData(0x0400, 6.1035156e-05f)] // smallest normal
    [InlineData(0x0001, 5.9604645e-08f)] // smallest subnormal, 2^-24
    [InlineData(0x03FF, 6.0975552e-05f)] // largest subnormal
    [InlineData(0x7C00, float.PositiveInfinity)]
    [InlineData(0xFC00, float.NegativeInfinity)]
    public void HalfKnownValues(int bits, float value)
    {
        var half = BitConverter.UInt16BitsToHalf((ushort)bits);
        var single = new float[1];
        FloatConversion.HalfToSingle([half], single);
        Assert.Equal(value, single[0]);
        var back = new Half[1];
        FloatConversion.SingleToHalf([value], back);
        Assert.Equal((ushort)bits, BitConverter.HalfToUInt16Bits(back[0]));
    }

    [Fact]
    public void SingleToHalfRoundsToNearestEvenAndOverflows()
    {
        var result = new Half[4];
        // 1 + 2^-11 ties to 1; 1 + 3*2^-11 ties to 1 + 2^-9; 65520 is halfway to the next (absent) value: infinity.
        FloatConversion.SingleToHalf([1 + MathF.Pow(2, -11), 1 + 3 * MathF.Pow(2, -11), 65520f, float.NaN], result);
        Assert.Equal(0x3C00, BitConverter.HalfToUInt16Bits(result[0]));
        Assert.Equal(0x3C02, BitConverter.HalfToUInt16Bits(result[1]));
        Assert.Equal(Half.PositiveInfinity, result[2]);
        Assert.True(Half.IsNaN(result[3]));
    }

    [Fact]
    public void EveryHalfRoundTripsThroughSingleAndBFloat16Exactly()
    {
        var all = Enumerable.Range(0, 65536).Select(i => BitConverter.UInt16BitsToHalf((ushort)i)).ToArray();
        var singles = new float[all.Length];
        var back = new Half[all.Length];

        FloatConversion.HalfToSingle(all, singles);
        FloatConversion.SingleToHalf(singles, back);

        for (var i = 0; i < all.Length; i++)
        {
            if (Half.IsNaN(all[i])) Assert.True(Half.IsNaN(back[i]));
            else Assert.Equal(i, BitConverter.HalfToUInt16Bits(back[i]));
        }
    }

    [Fact]
    public void HalfAndBFloat16ConvertThroughSingle()
    {
        var bf16 = new ushort[2];
        FloatConversion.HalfToBFloat16([(Half)1.5f, (Half)(-0.25f)], bf16);
        Assert.Equal([(ushort)0x3FC0, (ushort)0xBE80], bf16);
        var half = new Half[2];
        FloatConversion.BFloat16ToHalf(bf16, half);
        Assert.Equal([(Half)1.5f, (Half)(-0.25f)], half);
    }

    [Fact]
    public void MismatchedLengthsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => FloatConversion.BFloat16ToSingle(new ushort[3], new float[2]));
    }
}
