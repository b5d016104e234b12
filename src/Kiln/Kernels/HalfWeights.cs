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

    /// <summary>The shortest row (in weights) a one-row product on the AVX-512 path reads with 512-bit vectors on this CPU (<see cref="CpuTuning"/>).</summary>
    static abstract int Wide512MinimumK { get; }

    /// <summary>Eight elements at <paramref name="p"/> as float32 (needs AVX2).</summary>
    static abstract Vector256<float> Load8(ushort* p);

    /// <summary>Sixteen elements at <paramref name="p"/> as float32 (needs AVX-512F).</summary>
    static abstract Vector512<float> Load16(ushort* p);

    /// <summary>
    /// The placed form: <see cref="LoadPlaced8"/> and <see cref="LoadPlaced16"/> read each element as its value
    /// times 2^-PlacedExponent, in fewer steps than <see cref="Load8"/>; a one-row product multiplies x by
    /// 2^PlacedExponent instead, once per call (<see cref="HalfLinearMath{TWeights}"/>).
    /// </summary>
    static abstract int PlacedExponent { get; }

    /// <summary>
    /// Whether the placed form misreads some elements (infinities and NaNs): those whose bits without the sign are
    /// at least <see cref="SpecialMagnitude"/>. A row holding one is read again with the full steps.
    /// </summary>
    static abstract bool HasSpecials { get; }

    static abstract ushort SpecialMagnitude { get; }

    /// <summary>Eight elements at <paramref name="p"/> in the placed form (needs AVX2).</summary>
    static abstract Vector256<float> LoadPlaced8(ushort* p);

    /// <summary>Sixteen elements at <paramref name="p"/> in the placed form (needs AVX-512F).</summary>
    static abstract Vector512<float> LoadPlaced16(ushort* p);
}

/// <summary>bfloat16: the top half of a float32, so widening is a zero-extend and a shift.</summary>
public readonly unsafe struct BFloat16Weights : IHalfWeights
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static int Wide512MinimumK => CpuTuning.Bf16Wide512MinimumK;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ushort* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load(p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(p)), 16).AsSingle();

    // Widening is already a shift: the placed form is the value itself, and no pattern is special.
    public static int PlacedExponent => 0;

    public static bool HasSpecials => false;

    public static ushort SpecialMagnitude => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadPlaced8(ushort* p) => Load8(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadPlaced16(ushort* p) => Load16(p);
}

/// <summary>
/// IEEE half. .NET 10 exposes no F16C (vcvtph2ps) intrinsic, so the float32 bits are rebuilt with
/// integer steps and one float subtraction, the same in the scalar and the vector forms:
/// <list type="number">
/// <item>sign-extend the 16 bits, shift left by 13 and keep bit 31 and bits 27..13: sign, exponent and
/// mantissa in their float32 places at once (the sign needs no steps of its own);</item>
/// <item>add 112 to the exponent (15 to 127 bias): every normal value is now exact;</item>
/// <item>exponent 31 (infinity, NaN): OR in exponent 255, the payload kept;</item>
/// <item>exponent 0 (zero, subnormal): with one more exponent step the bits read ±2^-14·(1 + m/1024);
/// subtracting ±2^-14 (the same bits with the mantissa cleared) leaves ±m·2^-24 exactly, and the sign is
/// put back for ±0, which the subtraction makes +0.</item>
/// </list>
/// In every lane whose result is kept the subtraction's operands are normal (exponent 113), so a
/// denormals-are-zero mode cannot flush them and no subnormal operand takes the slow microcode path.
/// The one-row loops, which stream the weights, would be bound by these steps; they read the placed form instead:
/// step 1 alone, three instructions per eight elements. Its bits read as a float32 are the value times 2^-112 for
/// every finite f16 (exponent e becomes e - 15 + 127 - 112; a subnormal's m·2^-24 becomes the float32 subnormal
/// m·2^-136), and x is multiplied by 2^112 once per call, so each product, and so every rounding of the sum, is the
/// same as with the full steps (as long as the thread does not treat subnormal operands as zero, which neither .NET
/// nor ONNX Runtime sets). An infinity or NaN (exponent 31) reads as a finite float32; the loops keep the
/// largest magnitude they read and read such a row again with the full steps. Measured on the Zen 4 host over
/// Gaussian weights (std 0.02, 0.24 % subnormal, like trained ones): a one-row product over 268 MB took 9.3-10 ms, as
/// bf16, against 13-15 ms when runs of 32 finite weights were checked first and widened by step 1 and a multiply by
/// 2^112, and 22 ms with the full steps (docs/performance.md).
/// </summary>
public readonly unsafe struct HalfWeights : IHalfWeights
{
    private const uint Placed = 0x8FFFE000; // sign, exponent and mantissa after the shift by 13
    private const uint ExponentMask = 0x0F800000; // the 5-bit exponent in place
    private const uint Rebias = 112 << 23;
    private const uint InfinityExponent = 0x7F800000;
    private const uint SignMask = 0x80000000;
    private const uint SignAndExponent = 0xFF800000;

    // The placed form on 512-bit vectors was as fast or faster than on 256-bit ones at every row length measured.
    public static int Wide512MinimumK => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits)
    {
        var placed = ((uint)(short)bits << 13) & Placed;
        var exponent = placed & ExponentMask;
        var normal = placed + Rebias;
        if (exponent == ExponentMask) return BitConverter.UInt32BitsToSingle(normal | InfinityExponent);
        if (exponent != 0) return BitConverter.UInt32BitsToSingle(normal);
        var shifted = normal + (1u << 23);
        var value = BitConverter.UInt32BitsToSingle(shifted) - BitConverter.UInt32BitsToSingle(shifted & SignAndExponent);
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | (placed & SignMask));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ushort* p)
    {
        var placed = Avx2.And(Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load((short*)p)), 13), Vector256.Create(Placed).AsInt32());
        var exponent = Avx2.And(placed, Vector256.Create(ExponentMask).AsInt32());
        var normal = Avx2.Add(placed, Vector256.Create(Rebias).AsInt32());
        var special = Avx2.CompareEqual(exponent, Vector256.Create(ExponentMask).AsInt32());
        normal = Avx2.Or(normal, Avx2.And(special, Vector256.Create(InfinityExponent).AsInt32()));
        var shifted = Avx2.Add(normal, Vector256.Create(1 << 23));
        var small = Avx.Subtract(shifted.AsSingle(), Avx2.And(shifted, Vector256.Create(SignAndExponent).AsInt32()).AsSingle());
        small = Avx.Or(small, Avx2.And(placed, Vector256.Create(SignMask).AsInt32()).AsSingle());
        return Avx.BlendVariable(normal.AsSingle(), small, Avx2.CompareEqual(exponent, Vector256<int>.Zero).AsSingle());
    }

    // Step 1 alone: the value times 2^-112 for every finite element.
    public static int PlacedExponent => 112;

    public static bool HasSpecials => true;

    // Exponent 31: an infinity or a NaN.
    public static ushort SpecialMagnitude => 0x7C00;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadPlaced8(ushort* p) =>
        Avx2.And(Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load((short*)p)), 13), Vector256.Create(Placed).AsInt32()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadPlaced16(ushort* p) =>
        Avx512F.And(Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)p)), 13), Vector512.Create(Placed).AsInt32()).AsSingle();

    // Load8's steps on sixteen elements.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ushort* p)
    {
        var placed = Avx512F.And(Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)p)), 13), Vector512.Create(Placed).AsInt32());
        var exponent = Avx512F.And(placed, Vector512.Create(ExponentMask).AsInt32());
        var normal = Avx512F.Add(placed, Vector512.Create(Rebias).AsInt32());
        var special = Avx512F.CompareEqual(exponent, Vector512.Create(ExponentMask).AsInt32());
        normal = Avx512F.Or(normal, Avx512F.And(special, Vector512.Create(InfinityExponent).AsInt32()));
        var shifted = Avx512F.Add(normal, Vector512.Create(1 << 23));
        var small = Avx512F.Subtract(shifted.AsSingle(), Avx512F.And(shifted, Vector512.Create(SignAndExponent).AsInt32()).AsSingle());
        small = Avx512F.Or(small.AsInt32(), Avx512F.And(placed, Vector512.Create(SignMask).AsInt32())).AsSingle();
        return Avx512F.BlendVariable(normal.AsSingle(), small, Avx512F.CompareEqual(exponent, Vector512<int>.Zero).AsSingle());
    }
}
