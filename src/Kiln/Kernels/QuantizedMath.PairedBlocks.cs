using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// One-row int4 and int4_sym products two blocks per 256-bit vector. A block's 16 bytes of nibbles fill
/// half a vector, so unpacking one block at a time spends a mask, a shift, a mask and an insert on 32
/// values. Here the packed bytes of blocks b and b+1 share one vector: one mask gives the low nibbles
/// (values 0..15) of both, one shift and mask the high nibbles (16..31), and the activations are laid out
/// once per call to match (<see cref="PairActivations"/>), so two vpdpbusd give both blocks' sums, block
/// b in lanes 0..3 and b+1 in lanes 4..7, converted and scaled with one FMA. The several-row products
/// pair each input row's activations the same way (QuantizedMath.EightBlocks.cs, FourRowsEightBlocks).
/// </summary>
public static unsafe partial class QuantizedMath
{
    /// <summary>Most activation bytes (k = 65536) paired on the stack; longer rows take the one-block path.</summary>
    private const int MaxPairedBytes = 65536;

    // The first blocks − blocks % 8 blocks of one quantized row, per pair (b, b+1): x_b[0..16], x_b+1[0..16], x_b[16..32], x_b+1[16..32].
    private static void PairActivations(sbyte* qx, int blocks, sbyte* paired)
    {
        for (var b = 0; b + 2 <= (blocks & ~7); b += 2)
        {
            var x = qx + b * 32L;
            var to = paired + b * 32L;
            Sse2.Store(to, Sse2.LoadVector128(x));
            Sse2.Store(to + 16, Sse2.LoadVector128(x + 32));
            Sse2.Store(to + 32, Sse2.LoadVector128(x + 16));
            Sse2.Store(to + 48, Sse2.LoadVector128(x + 48));
        }
    }

    // As DotEightBlocks for the nibble schemes (T: Int4Blocks or Int4SymShifted), with paired from PairActivations.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotPairedBlocks<T>(byte* w, sbyte* qx, sbyte* paired, float* dx, float* sx, int* xsums, int blocks, bool vnni) where T : struct, IBlocks
    {
        var bytes = T.Bytes;
        var nibbles = bytes - 16;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, minimum = default;
        var b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            var w0 = w + (long)b * bytes;
            var x0 = paired + b * 32L;
            for (var p = 0; p < 8 * bytes; p += 64) Sse.Prefetch0(w0 + PrefetchAhead + p);
            var words = BlockHeads(w0, bytes);
            var d = Avx.Multiply(Halves(Avx2.ShiftLeftLogical(words, 16)), Avx.LoadVector256(dx + b));
            if (T.HasMinimum) minimum = Fma.MultiplyAdd(Halves(words), Avx.LoadVector256(sx + b), minimum);
            if (T.Shift != 0) minimum = Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + b)), minimum);
            a0 = Fma.MultiplyAdd(PairDot(w0 + nibbles, bytes, x0, vnni), Avx2.PermuteVar8x32(d, Vector256.Create(0, 0, 0, 0, 1, 1, 1, 1)), a0);
            a1 = Fma.MultiplyAdd(PairDot(w0 + 2 * bytes + nibbles, bytes, x0 + 64, vnni), Avx2.PermuteVar8x32(d, Vector256.Create(2, 2, 2, 2, 3, 3, 3, 3)), a1);
            a2 = Fma.MultiplyAdd(PairDot(w0 + 4 * bytes + nibbles, bytes, x0 + 128, vnni), Avx2.PermuteVar8x32(d, Vector256.Create(4, 4, 4, 4, 5, 5, 5, 5)), a2);
            a3 = Fma.MultiplyAdd(PairDot(w0 + 6 * bytes + nibbles, bytes, x0 + 192, vnni), Avx2.PermuteVar8x32(d, Vector256.Create(6, 6, 6, 6, 7, 7, 7, 7)), a3);
        }
        var rest = 0f;
        for (; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            a0 = Fma.MultiplyAdd(T.Dot(T.Values(block), qx + b * 32L, vnni), Vector256.Create(Scale(block) * dx[b]), a0);
            if (T.HasMinimum) rest += Scale(block + 2) * sx[b];
            if (T.Shift != 0) rest += Scale(block) * dx[b] * xsums[b];
        }
        if (T.Shift != 0) return Vector256.Sum((a0 + a1) + (a2 + a3)) - T.Shift * (Vector256.Sum(minimum) + rest);
        return Vector256.Sum((a0 + a1) + (a2 + a3) + minimum) + rest;
    }

    // Σq·x of two blocks (nibbles at packed and packed + bytes, x paired): lanes 0..3 the first block's, 4..7 the second's.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> PairDot(byte* packed, int bytes, sbyte* x, bool vnni)
    {
        var (low, high) = UnpackPair(packed, bytes);
        return PairDot(low, high, x, vnni);
    }

    // The values 0..15 (low) and 16..31 (high) of two blocks, the first block's in bytes 0..15.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<byte> Low, Vector256<byte> High) UnpackPair(byte* packed, int bytes)
    {
        var both = Vector256.Create(Sse2.LoadVector128(packed), Sse2.LoadVector128(packed + bytes));
        var mask = Vector256.Create((byte)0x0F);
        return (Avx2.And(both, mask), Avx2.And(Avx2.ShiftRightLogical(both.AsUInt16(), 4).AsByte(), mask));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> PairDot(Vector256<byte> low, Vector256<byte> high, sbyte* x, bool vnni)
    {
        if (vnni)
            return Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, low, Avx.LoadVector256(x)), high, Avx.LoadVector256(x + 32)));
        // Pairs of 15 · 127 products, two such pair sums added: ≤ 4 · 1905 < 2^15.
        var pairs = Avx2.Add(Avx2.MultiplyAddAdjacent(low, Avx.LoadVector256(x)), Avx2.MultiplyAddAdjacent(high, Avx.LoadVector256(x + 32)));
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)));
    }
}
