using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// The one-row (decode) products of the AVX2 paths, eight blocks per step. Decoding each block's f16
/// scale with scalar steps, multiplying it by dx[b] and broadcasting it cost more than the block's
/// integer dot product; here one gather fetches the scale words of eight blocks, one vector decodes them
/// (the integer steps of <see cref="Scale"/>) and multiplies them by dx[b..b+8], and each block takes
/// its scale with an in-lane shuffle. Four accumulators keep the FMAs independent.
/// </summary>
public static unsafe partial class QuantizedMath
{
    private interface IBlocks
    {
        static abstract int Bytes { get; }

        /// <summary>Whether the block's second f16 is a minimum m, adding m·Σx (int4 = Q4_1).</summary>
        static abstract bool HasMinimum { get; }

        /// <summary>Σ q·qx of the block's 32 values as eight float partial sums.</summary>
        static abstract Vector256<float> Dot(byte* block, sbyte* x, bool vnni);
    }

    private readonly struct Int8Blocks : IBlocks
    {
        public static int Bytes => 2 + QuantSchemes.BlockSize;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(byte* block, sbyte* x, bool vnni) => BlockDot(Avx.LoadVector256((sbyte*)block + 2), Avx.LoadVector256(x), vnni);
    }

    private readonly struct Int4SymBlocks : IBlocks
    {
        public static int Bytes => 2 + QuantSchemes.BlockSize / 2;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(byte* block, sbyte* x, bool vnni) => BlockDot(Unpack(block + 2), Avx.LoadVector256(x), vnni);
    }

    private readonly struct Int4Blocks : IBlocks
    {
        public static int Bytes => 4 + QuantSchemes.BlockSize / 2;
        public static bool HasMinimum => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(byte* block, sbyte* x, bool vnni) => BlockDotUnsigned(UnpackUnsigned(block + 4), Avx.LoadVector256(x), vnni);
    }

    private static float DotInt8Avx2(byte* w, sbyte* qx, float* dx, int blocks, bool vnni) => DotEightBlocks<Int8Blocks>(w, qx, dx, null, blocks, vnni);

    private static float DotInt4SymAvx2(byte* w, sbyte* qx, float* dx, int blocks, bool vnni) => DotEightBlocks<Int4SymBlocks>(w, qx, dx, null, blocks, vnni);

    private static float DotInt4Avx2(byte* w, sbyte* qx, float* dx, float* sx, int blocks, bool vnni) => DotEightBlocks<Int4Blocks>(w, qx, dx, sx, blocks, vnni);

    /// <summary>Bytes ahead of the block being read that the one-row products prefetch.</summary>
    private const int PrefetchAhead = 2048;

    // Σ over blocks of d·dx·Σq·qx (+ m·Σx for int4).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotEightBlocks<T>(byte* w, sbyte* qx, float* dx, float* sx, int blocks, bool vnni) where T : struct, IBlocks
    {
        var bytes = T.Bytes;
        var offsets = Vector256.Create(0, bytes, 2 * bytes, 3 * bytes, 4 * bytes, 5 * bytes, 6 * bytes, 7 * bytes);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, minimum = default;
        var b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            var w0 = w + (long)b * bytes;
            var x0 = qx + b * 32L;
            // Ask for the weights a little ahead: the hardware prefetcher alone leaves the read short of the bandwidth.
            for (var p = 0; p < 8 * bytes; p += 64) Sse.Prefetch0(w0 + PrefetchAhead + p);
            // Each block's first 32 bits: its scale in the low half, int4's minimum in the high half.
            var words = Avx2.GatherVector256((int*)w0, offsets, 1);
            var d = Avx.Multiply(Halves(Avx2.ShiftLeftLogical(words, 16)), Avx.LoadVector256(dx + b));
            if (T.HasMinimum) minimum = Fma.MultiplyAdd(Halves(words), Avx.LoadVector256(sx + b), minimum);
            // vpermilps broadcasts within a 128-bit half, so each half of d is first copied to both.
            var low = Avx.Permute2x128(d, d, 0x00);
            var high = Avx.Permute2x128(d, d, 0x11);
            a0 = Fma.MultiplyAdd(T.Dot(w0, x0, vnni), Avx.Permute(low, 0x00), a0);
            a1 = Fma.MultiplyAdd(T.Dot(w0 + bytes, x0 + 32, vnni), Avx.Permute(low, 0x55), a1);
            a2 = Fma.MultiplyAdd(T.Dot(w0 + 2 * bytes, x0 + 64, vnni), Avx.Permute(low, 0xAA), a2);
            a3 = Fma.MultiplyAdd(T.Dot(w0 + 3 * bytes, x0 + 96, vnni), Avx.Permute(low, 0xFF), a3);
            a0 = Fma.MultiplyAdd(T.Dot(w0 + 4 * bytes, x0 + 128, vnni), Avx.Permute(high, 0x00), a0);
            a1 = Fma.MultiplyAdd(T.Dot(w0 + 5 * bytes, x0 + 160, vnni), Avx.Permute(high, 0x55), a1);
            a2 = Fma.MultiplyAdd(T.Dot(w0 + 6 * bytes, x0 + 192, vnni), Avx.Permute(high, 0xAA), a2);
            a3 = Fma.MultiplyAdd(T.Dot(w0 + 7 * bytes, x0 + 224, vnni), Avx.Permute(high, 0xFF), a3);
        }
        var rest = 0f;
        for (; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            a0 = Fma.MultiplyAdd(T.Dot(block, qx + b * 32L, vnni), Vector256.Create(Scale(block) * dx[b]), a0);
            if (T.HasMinimum) rest += Scale(block + 2) * sx[b];
        }
        return Vector256.Sum((a0 + a1) + (a2 + a3) + minimum) + rest;
    }

    // Eight f16 in the high 16 bits of the lanes as f32, exactly as Scale: the arithmetic shift puts the
    // sign in bit 31 and the 15 other bits at 27..13 (the mask drops the copies and the low half), and 2^112 rebiases.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Halves(Vector256<int> high) =>
        Avx.Multiply(Avx2.And(Avx2.ShiftRightArithmetic(high, 3), Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle(), Vector256.Create(TwoTo112));
}
