using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// A 16-bit float weight format the Linear kernel reads directly: its elements widened to float32,
/// exactly, one at a time or eight at a time (AVX2). Static abstract members, so the kernel's loops are
/// compiled once per format with the conversion inlined.
/// </summary>
public unsafe interface IHalfWeights
{
    static abstract float ToSingle(ushort bits);

    /// <summary>Eight elements at <paramref name="p"/> as float32 (needs AVX2).</summary>
    static abstract Vector256<float> Load8(ushort* p);

    /// <summary>Sixteen elements at <paramref name="p"/> as float32 (needs AVX-512F).</summary>
    static abstract Vector512<float> Load16(ushort* p);
}

/// <summary>bfloat16: the top half of a float32, so widening is a zero-extend and a shift.</summary>
public readonly unsafe struct BFloat16Weights : IHalfWeights
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ushort* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load(p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(p)), 16).AsSingle();
}

/// <summary>
/// IEEE half. .NET 10 exposes no F16C (vcvtph2ps) intrinsic, so the vector form rebuilds the float32
/// bits with integer AVX2: exponent rebiased by 112, infinities and NaNs moved to exponent 255, and
/// subnormals made normal by one exact float subtraction of normal numbers (so a denormals-are-zero
/// mode cannot flush them).
/// </summary>
public readonly unsafe struct HalfWeights : IHalfWeights
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ushort* p)
    {
        var h = Avx2.ConvertToVector256Int32(Vector128.Load(p));
        var magnitude = Avx2.And(h, Vector256.Create(0x7FFF));
        var exponent = Avx2.And(h, Vector256.Create(0x7C00));
        // Exponent and mantissa in place, rebiased from 15 to 127.
        var bits = Avx2.Add(Avx2.ShiftLeftLogical(magnitude, 13), Vector256.Create(112 << 23));
        // Infinity and NaN (exponent 31): another 112 takes the exponent to 255, the payload kept.
        bits = Avx2.Add(bits, Avx2.And(Avx2.CompareEqual(exponent, Vector256.Create(0x7C00)), Vector256.Create(112 << 23)));
        // Zero and subnormals (exponent 0): 2^-14 · (1 + m/1024) - 2^-14 is m · 2^-24, exactly.
        var small = Avx2.CompareEqual(exponent, Vector256<int>.Zero);
        var rebuilt = Avx.Subtract(Avx2.Add(bits, Vector256.Create(1 << 23)).AsSingle(), Vector256.Create(113 << 23).AsSingle());
        var value = Avx.BlendVariable(bits.AsSingle(), rebuilt, small.AsSingle());
        var sign = Avx2.ShiftLeftLogical(Avx2.And(h, Vector256.Create(0x8000)), 16);
        return Avx.Or(value, sign.AsSingle());
    }

    // Load8's steps on sixteen elements.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ushort* p)
    {
        var h = Avx512F.ConvertToVector512Int32(Vector256.Load(p));
        var magnitude = Avx512F.And(h, Vector512.Create(0x7FFF));
        var exponent = Avx512F.And(h, Vector512.Create(0x7C00));
        var bits = Avx512F.Add(Avx512F.ShiftLeftLogical(magnitude, 13), Vector512.Create(112 << 23));
        bits = Avx512F.Add(bits, Avx512F.And(Avx512F.CompareEqual(exponent, Vector512.Create(0x7C00)), Vector512.Create(112 << 23)));
        var small = Avx512F.CompareEqual(exponent, Vector512<int>.Zero);
        var rebuilt = Avx512F.Subtract(Avx512F.Add(bits, Vector512.Create(1 << 23)).AsSingle(), Vector512.Create(113 << 23).AsSingle());
        var value = Avx512F.BlendVariable(bits.AsSingle(), rebuilt, small.AsSingle());
        var sign = Avx512F.ShiftLeftLogical(Avx512F.And(h, Vector512.Create(0x8000)), 16);
        return Avx512F.Or(value.AsInt32(), sign).AsSingle();
    }
}
