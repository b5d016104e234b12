using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Weights;

/// <summary>
/// Conversions between f32, f16 and bf16, on raw bit patterns (<see cref="ushort"/> for bf16).
/// Widening is exact; narrowing rounds to nearest, ties to even, and keeps NaN a NaN.
/// </summary>
public static class FloatConversion
{
    /// <summary>bf16 is the top half of an f32, so widening is a shift.</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static ushort SingleToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000)
        {
            // Rounding could carry a NaN's payload into infinity; keep the top bits and force a quiet NaN.
            return (ushort)((bits >> 16) | 0x0040);
        }
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    public static void BFloat16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var src = ref MemoryMarshal.GetReference(source);
            ref var dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
            for (; i <= source.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                (lower << 16).StoreUnsafe(ref dst, (nuint)i);
                (upper << 16).StoreUnsafe(ref dst, (nuint)(i + Vector256<uint>.Count));
            }
        }
        for (; i < source.Length; i++) destination[i] = BFloat16ToSingle(source[i]);
    }

    public static void SingleToBFloat16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        CheckLengths(source.Length, destination.Length);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var src = ref MemoryMarshal.GetReference(source);
            ref var dst = ref MemoryMarshal.GetReference(destination);
            for (; i <= source.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var lower = RoundToBFloat16(Vector256.LoadUnsafe(ref src, (nuint)i));
                var upper = RoundToBFloat16(Vector256.LoadUnsafe(ref src, (nuint)(i + Vector256<float>.Count)));
                Vector256.Narrow(lower, upper).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < source.Length; i++) destination[i] = SingleToBFloat16(source[i]);
    }

    public static void HalfToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        for (var i = 0; i < source.Length; i++) destination[i] = (float)source[i];
    }

    /// <summary>System.Half's conversion rounds to nearest even and overflows to infinity, as IEEE 754 asks.</summary>
    public static void SingleToHalf(ReadOnlySpan<float> source, Span<Half> destination)
    {
        CheckLengths(source.Length, destination.Length);
        for (var i = 0; i < source.Length; i++) destination[i] = (Half)source[i];
    }

    public static void BFloat16ToHalf(ReadOnlySpan<ushort> source, Span<Half> destination)
    {
        CheckLengths(source.Length, destination.Length);
        for (var i = 0; i < source.Length; i++) destination[i] = (Half)BFloat16ToSingle(source[i]);
    }

    /// <summary>Exact through f32 (every f16 is an f32), then one rounding to bf16.</summary>
    public static void HalfToBFloat16(ReadOnlySpan<Half> source, Span<ushort> destination)
    {
        CheckLengths(source.Length, destination.Length);
        for (var i = 0; i < source.Length; i++) destination[i] = SingleToBFloat16((float)source[i]);
    }

    /// <summary>The same rounding as <see cref="SingleToBFloat16(float)"/>, eight lanes at a time; the result is in the low 16 bits.</summary>
    private static Vector256<uint> RoundToBFloat16(Vector256<float> values)
    {
        var bits = values.AsUInt32();
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        var nan = (bits >> 16) | Vector256.Create(0x0040u);
        var isNumber = Vector256.Equals(values, values).AsUInt32();
        return Vector256.ConditionalSelect(isNumber, rounded, nan);
    }

    private static void CheckLengths(int source, int destination)
    {
        if (source != destination)
        {
            throw new ArgumentException($"source has {source} elements but destination has {destination}");
        }
    }
}
