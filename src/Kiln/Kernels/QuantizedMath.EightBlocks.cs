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

        /// <summary>
        /// 0, or the c that <see cref="Values"/> adds to each value to make it an unsigned byte, so that
        /// the product is Σ(q + c)·qx − c·Σqx with Σqx per block given (QuantizedMath.ShiftedBlocks.cs).
        /// </summary>
        static abstract int Shift { get; }

        /// <summary>Whether the block's second f16 is a minimum m, adding m·Σx (int4 = Q4_1).</summary>
        static abstract bool HasMinimum { get; }

        /// <summary>The block's 32 values q (as bytes: signed for int8 and int4_sym, unsigned for int4).</summary>
        static abstract Vector256<byte> Values(byte* block);

        /// <summary>Σ q·qx of one block as eight float partial sums.</summary>
        static abstract Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni);
    }

    private readonly struct Int8Blocks : IBlocks
    {
        public static int Shift => 0;
        public static int Bytes => 2 + QuantSchemes.BlockSize;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(byte* block) => Avx.LoadVector256(block + 2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni) => BlockDot(q.AsSByte(), Avx.LoadVector256(x), vnni);
    }

    private readonly struct Int4SymBlocks : IBlocks
    {
        public static int Shift => 0;
        public static int Bytes => 2 + QuantSchemes.BlockSize / 2;
        public static bool HasMinimum => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(byte* block) => Unpack(block + 2).AsByte();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni) => BlockDot(q.AsSByte(), Avx.LoadVector256(x), vnni);
    }

    private readonly struct Int4Blocks : IBlocks
    {
        public static int Shift => 0;
        public static int Bytes => 4 + QuantSchemes.BlockSize / 2;
        public static bool HasMinimum => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(byte* block) => UnpackUnsigned(block + 4);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dot(Vector256<byte> q, sbyte* x, bool vnni) => BlockDotUnsigned(q, Avx.LoadVector256(x), vnni);
    }

    private static float DotInt8Avx2(byte* w, sbyte* qx, float* dx, int blocks, bool vnni) => DotEightBlocks<Int8Blocks>(w, qx, dx, null, null, blocks, vnni);

    private static float DotInt4SymAvx2(byte* w, sbyte* qx, float* dx, int blocks, bool vnni) => DotEightBlocks<Int4SymBlocks>(w, qx, dx, null, null, blocks, vnni);

    private static float DotInt4Avx2(byte* w, sbyte* qx, float* dx, float* sx, int blocks, bool vnni) => DotEightBlocks<Int4Blocks>(w, qx, dx, sx, null, blocks, vnni);

    /// <summary>
    /// Bytes ahead of the block being read that the one-row products prefetch: 4 KB measured 4-17 % more decode than
    /// 2 KB for int8, int4 and int4_sym at one and two threads, and 8 KB no more than 4 (docs/weights.md).
    /// </summary>
    private const int PrefetchAhead = 4096;

    // Σ over blocks of d·dx·Σq·qx (+ m·Σx for int4; − c·d·dx·Σqx for a shift c, xsums holding each block's Σqx).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotEightBlocks<T>(byte* w, sbyte* qx, float* dx, float* sx, int* xsums, int blocks, bool vnni) where T : struct, IBlocks
    {
        var bytes = T.Bytes;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, minimum = default;
        var b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            var w0 = w + (long)b * bytes;
            var x0 = qx + b * 32L;
            // Ask for the weights a little ahead: the hardware prefetcher alone leaves the read short of the bandwidth.
            for (var p = 0; p < 8 * bytes; p += 64) Sse.Prefetch0(w0 + PrefetchAhead + p);
            // Each block's first 32 bits: its scale in the low half, int4's minimum in the high half.
            var words = BlockHeads(w0, bytes);
            var d = Avx.Multiply(Halves(Avx2.ShiftLeftLogical(words, 16)), Avx.LoadVector256(dx + b));
            if (T.HasMinimum) minimum = Fma.MultiplyAdd(Halves(words), Avx.LoadVector256(sx + b), minimum);
            // A shift's Σqx term shares the minimum's accumulator: no scheme has both.
            if (T.Shift != 0) minimum = Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + b)), minimum);
            // vpermilps broadcasts within a 128-bit half, so each half of d is first copied to both.
            var low = Avx.Permute2x128(d, d, 0x00);
            var high = Avx.Permute2x128(d, d, 0x11);
            a0 = Fma.MultiplyAdd(T.Dot(T.Values(w0), x0, vnni), Avx.Permute(low, 0x00), a0);
            a1 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + bytes), x0 + 32, vnni), Avx.Permute(low, 0x55), a1);
            a2 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 2 * bytes), x0 + 64, vnni), Avx.Permute(low, 0xAA), a2);
            a3 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 3 * bytes), x0 + 96, vnni), Avx.Permute(low, 0xFF), a3);
            a0 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 4 * bytes), x0 + 128, vnni), Avx.Permute(high, 0x00), a0);
            a1 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 5 * bytes), x0 + 160, vnni), Avx.Permute(high, 0x55), a1);
            a2 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 6 * bytes), x0 + 192, vnni), Avx.Permute(high, 0xAA), a2);
            a3 = Fma.MultiplyAdd(T.Dot(T.Values(w0 + 7 * bytes), x0 + 224, vnni), Avx.Permute(high, 0xFF), a3);
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

    // y[0], y[yStride], y[2·yStride], y[3·yStride] = one weight row against four quantized input rows xStride
    // apart, eight blocks per step as DotEightBlocks: each block's values are loaded (and unpacked) once for
    // the four rows, each row multiplies the eight decoded scales by its own dx once per step.
    // xsums: each row's Σqx per block where the scheme drops the sign trick (QuantizedMath.ShiftedBlocks.cs), else null.
    // paired: the rows' activations from PairActivations (int4, and int4_sym with xsums), else null.
    private static void FourRowsAvx2(QuantScheme scheme, byte* w, sbyte* qx, sbyte* paired, long xStride, float* dx, float* sx, int* xsums, int blocks, float* y, int yStride, bool vnni)
    {
        if (scheme == QuantScheme.Int4) FourRowsEightBlocks<Int4Blocks>(w, qx, paired, xStride, dx, sx, null, blocks, y, yStride, vnni);
        else if (xsums != null && scheme == QuantScheme.Int8) FourRowsEightBlocks<Int8Shifted>(w, qx, null, xStride, dx, sx, xsums, blocks, y, yStride, vnni);
        else if (xsums != null) FourRowsEightBlocks<Int4SymShifted>(w, qx, paired, xStride, dx, sx, xsums, blocks, y, yStride, vnni);
        else if (scheme == QuantScheme.Int8) FourRowsEightBlocks<Int8Blocks>(w, qx, null, xStride, dx, sx, null, blocks, y, yStride, vnni);
        else FourRowsEightBlocks<Int4SymBlocks>(w, qx, null, xStride, dx, sx, null, blocks, y, yStride, vnni);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRowsEightBlocks<T>(byte* w, sbyte* qx, sbyte* paired, long xStride, float* dx, float* sx, int* xsums, int blocks, float* y, int yStride, bool vnni) where T : struct, IBlocks
    {
        var bytes = T.Bytes;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default;
        var b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            var w0 = w + (long)b * bytes;
            var x0 = qx + b * 32L;
            var words = BlockHeads(w0, bytes);
            var scale = Halves(Avx2.ShiftLeftLogical(words, 16));
            var d0 = Avx.Multiply(scale, Avx.LoadVector256(dx + b));
            var d1 = Avx.Multiply(scale, Avx.LoadVector256(dx + blocks + b));
            var d2 = Avx.Multiply(scale, Avx.LoadVector256(dx + 2 * blocks + b));
            var d3 = Avx.Multiply(scale, Avx.LoadVector256(dx + 3 * blocks + b));
            if (T.HasMinimum)
            {
                var minimum = Halves(words);
                m0 = Fma.MultiplyAdd(minimum, Avx.LoadVector256(sx + b), m0);
                m1 = Fma.MultiplyAdd(minimum, Avx.LoadVector256(sx + blocks + b), m1);
                m2 = Fma.MultiplyAdd(minimum, Avx.LoadVector256(sx + 2 * blocks + b), m2);
                m3 = Fma.MultiplyAdd(minimum, Avx.LoadVector256(sx + 3 * blocks + b), m3);
            }
            if (T.Shift != 0)
            {
                m0 = Fma.MultiplyAdd(d0, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + b)), m0);
                m1 = Fma.MultiplyAdd(d1, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + blocks + b)), m1);
                m2 = Fma.MultiplyAdd(d2, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + 2 * blocks + b)), m2);
                m3 = Fma.MultiplyAdd(d3, Avx.ConvertToVector256Single(Avx.LoadVector256(xsums + 3 * blocks + b)), m3);
            }
            if (paired != null)
            {
                // Two nibble blocks per vector (QuantizedMath.PairedBlocks.cs): lanes 0..3 take block 2p's scale, 4..7 block 2p+1's.
                for (var p = 0; p < 4; p++)
                {
                    var (low, high) = UnpackPair(w0 + 2 * p * bytes + (bytes - 16), bytes);
                    var x = paired + (b + 2 * p) * 32L;
                    var lanes = Vector256.Create(2 * p) + Vector256.Create(0, 0, 0, 0, 1, 1, 1, 1);
                    a0 = Fma.MultiplyAdd(PairDot(low, high, x, vnni), Avx2.PermuteVar8x32(d0, lanes), a0);
                    a1 = Fma.MultiplyAdd(PairDot(low, high, x + xStride, vnni), Avx2.PermuteVar8x32(d1, lanes), a1);
                    a2 = Fma.MultiplyAdd(PairDot(low, high, x + 2 * xStride, vnni), Avx2.PermuteVar8x32(d2, lanes), a2);
                    a3 = Fma.MultiplyAdd(PairDot(low, high, x + 3 * xStride, vnni), Avx2.PermuteVar8x32(d3, lanes), a3);
                }
                continue;
            }
            for (var i = 0; i < 8; i++)
            {
                var q = T.Values(w0 + i * bytes);
                var x = x0 + i * 32;
                // Lane i of each row's scales in every lane (vpermps takes a variable index).
                var lane = Vector256.Create(i);
                a0 = Fma.MultiplyAdd(T.Dot(q, x, vnni), Avx2.PermuteVar8x32(d0, lane), a0);
                a1 = Fma.MultiplyAdd(T.Dot(q, x + xStride, vnni), Avx2.PermuteVar8x32(d1, lane), a1);
                a2 = Fma.MultiplyAdd(T.Dot(q, x + 2 * xStride, vnni), Avx2.PermuteVar8x32(d2, lane), a2);
                a3 = Fma.MultiplyAdd(T.Dot(q, x + 3 * xStride, vnni), Avx2.PermuteVar8x32(d3, lane), a3);
            }
        }
        float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
        for (; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var q = T.Values(block);
            var d = Scale(block);
            var x = qx + b * 32L;
            a0 = Fma.MultiplyAdd(T.Dot(q, x, vnni), Vector256.Create(d * dx[b]), a0);
            a1 = Fma.MultiplyAdd(T.Dot(q, x + xStride, vnni), Vector256.Create(d * dx[b + blocks]), a1);
            a2 = Fma.MultiplyAdd(T.Dot(q, x + 2 * xStride, vnni), Vector256.Create(d * dx[b + 2 * blocks]), a2);
            a3 = Fma.MultiplyAdd(T.Dot(q, x + 3 * xStride, vnni), Vector256.Create(d * dx[b + 3 * blocks]), a3);
            if (T.HasMinimum)
            {
                var m = Scale(block + 2);
                (r0, r1, r2, r3) = (r0 + m * sx[b], r1 + m * sx[b + blocks], r2 + m * sx[b + 2 * blocks], r3 + m * sx[b + 3 * blocks]);
            }
            if (T.Shift != 0)
            {
                (r0, r1) = (r0 + d * dx[b] * xsums[b], r1 + d * dx[b + blocks] * xsums[b + blocks]);
                (r2, r3) = (r2 + d * dx[b + 2 * blocks] * xsums[b + 2 * blocks], r3 + d * dx[b + 3 * blocks] * xsums[b + 3 * blocks]);
            }
        }
        if (T.Shift != 0)
        {
            y[0] = Vector256.Sum(a0) - T.Shift * (Vector256.Sum(m0) + r0);
            y[yStride] = Vector256.Sum(a1) - T.Shift * (Vector256.Sum(m1) + r1);
            y[2L * yStride] = Vector256.Sum(a2) - T.Shift * (Vector256.Sum(m2) + r2);
            y[3L * yStride] = Vector256.Sum(a3) - T.Shift * (Vector256.Sum(m3) + r3);
            return;
        }
        y[0] = Vector256.Sum(a0 + m0) + r0;
        y[yStride] = Vector256.Sum(a1 + m1) + r1;
        y[2L * yStride] = Vector256.Sum(a2 + m2) + r2;
        y[3L * yStride] = Vector256.Sum(a3 + m3) + r3;
    }

    // The first 32 bits of eight consecutive blocks (each block's scale, and int4's minimum; blocks of 18 bytes leave
    // them unaligned): eight loads, not a vpgatherdd, which made these products 8-28 % slower on Zen 5 (docs/weights.md).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockHeads(byte* w, int bytes) => Vector256.Create(
        Head(w), Head(w + bytes), Head(w + 2 * bytes), Head(w + 3 * bytes),
        Head(w + 4 * bytes), Head(w + 5 * bytes), Head(w + 6 * bytes), Head(w + 7 * bytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Head(byte* block) => Unsafe.ReadUnaligned<int>(block);

    // Eight f16 in the high 16 bits of the lanes as f32, exactly as Scale: the arithmetic shift puts the
    // sign in bit 31 and the 15 other bits at 27..13 (the mask drops the copies and the low half), and 2^112 rebiases.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Halves(Vector256<int> high) =>
        Avx.Multiply(Avx2.And(Avx2.ShiftRightArithmetic(high, 3), Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle(), Vector256.Create(TwoTo112));
}
