using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// Several-row products through integer panels. Sixteen weight rows (output columns) are laid out once as
/// unsigned bytes, four values of each side by side: 64 bytes hold values 4i..4i+3 of a block for all sixteen
/// columns. One multiply-add of bytes then takes the same four activations (broadcast) against all of them and
/// adds each column's products in its own lane, so a block's product for one input row is eight such steps into
/// per-column integer sums, then one conversion and one FMA by the scales: no horizontal sums and no per-block
/// shuffles of the scales, which the one-row products (QuantizedMath.EightBlocks.cs) spend on every block and row.
/// The values are q + T.Shift, unsigned: int4 as stored (its minimum adds m·Σx, one more FMA), int4_sym's nibbles
/// (q + 8) and int8's q + 128, whose shift comes off the integer sums exactly (shift · Σqx per block and row).
/// On 512-bit vectors (AVX-512BW) the nibble schemes use vpmaddubsw, whose int16 pair sums stay exact over a whole
/// block (≤ 16 · 15 · 127 < 2^15), so a block costs eight of them and one vpmaddwd; on 256-bit vectors, eight
/// columns at a time, vpdpbusd (AVX-VNNI) or the same vpmaddubsw sums. int8 as q + 128 needs vpdpbusd: its int16 pairs
/// would overflow (2 · 255 · 127); without VNNI, on 512-bit vectors, int8 keeps its signed values and vpmaddubsw takes
/// |q| against x with q's sign (pairs ≤ 2 · 127², widened at every group). Figures in docs/weights.md.
/// </summary>
public static unsafe partial class QuantizedMath
{
    /// <summary>Weight rows (output columns) per integer panel: the sixteen int32 lanes of a 512-bit vector, two 256-bit halves.</summary>
    public const int PanelColumns = 16;

    /// <summary>Fewest input rows for which a product goes through integer panels: below it laying out the panel is not repaid.</summary>
    public const int IntegerPanelMinRows = 8;

    // One block of a panel: for each group i of four values, those values of the sixteen columns (64 bytes); then the
    // columns' scales d and (int4) minimums m, sixteen floats each.
    private const int PanelGroupBytes = 4 * PanelColumns;
    private const int PanelBlockBytes = QuantSchemes.BlockSize * PanelColumns;
    private const int PanelBlockScales = 2 * PanelColumns;

    /// <summary>Whether <see cref="Multiply"/> computes this product through integer panels.</summary>
    public static bool UsesIntegerPanels(QuantizedPath path, QuantScheme scheme, int rows) =>
        rows >= IntegerPanelMinRows && path != QuantizedPath.Portable && HasIntegerPanels(path, KernelPaths.Best, scheme);

    // int8 needs vpdpbusd or, signed, the 512-bit tile; the nibble schemes run on any vector path.
    private static bool HasIntegerPanels(QuantizedPath path, KernelPath tile, QuantScheme scheme) =>
        scheme != QuantScheme.Int8 || path == QuantizedPath.AvxVnni || tile == KernelPath.Avx512;

    /// <summary>
    /// As <see cref="Multiply"/>, always through integer panels: y[r, first..end) for every row r of the quantized x, W's packed
    /// rows <paramref name="w"/>, y's rows <paramref name="n"/> apart. <paramref name="path"/> is AvxVnni, or Avx2 for the nibble
    /// schemes and, with the Avx512 tile, int8; <paramref name="tile"/> Avx512 takes the nibble schemes' products (and int8's
    /// without VNNI) on 512-bit vectors.
    /// </summary>
    public static void MultiplyIntegerPanels(QuantizedPath path, KernelPath tile, QuantScheme scheme, sbyte* qx, float* dx, float* sx, byte* w, float* y, int rows, int k, int n, int first, int end)
    {
        if (path == QuantizedPath.Portable || !IsSupported(path) || !HasIntegerPanels(path, tile, scheme))
            throw new PlatformNotSupportedException($"no integer panels for {scheme} on the {path} path and the {tile} tile here");
        if (tile == KernelPath.Portable || !KernelPaths.IsSupported(tile)) throw new PlatformNotSupportedException($"no {tile} tile here");
        var wide = tile == KernelPath.Avx512 && (scheme != QuantScheme.Int8 || path != QuantizedPath.AvxVnni);
        if (scheme == QuantScheme.Int4) MultiplyIntegerPanels<Int4Blocks>(path, wide, qx, dx, sx, w, y, rows, k, n, first, end);
        else if (scheme == QuantScheme.Int4Sym) MultiplyIntegerPanels<Int4SymShifted>(path, wide, qx, dx, sx, w, y, rows, k, n, first, end);
        else if (wide) MultiplyIntegerPanels<Int8Blocks>(path, wide, qx, dx, sx, w, y, rows, k, n, first, end);
        else MultiplyIntegerPanels<Int8Shifted>(path, wide, qx, dx, sx, w, y, rows, k, n, first, end);
    }

    private static void MultiplyIntegerPanels<T>(QuantizedPath path, bool wide, sbyte* qx, float* dx, float* sx, byte* w, float* y, int rows, int k, int n, int first, int end)
        where T : struct, IBlocks
    {
        var blocks = (int)QuantSchemes.Blocks(k);
        var rowBytes = (long)blocks * T.Bytes;
        var xStride = (long)blocks * QuantSchemes.BlockSize;
        var panel = (byte*)NativeMemory.AlignedAlloc((nuint)((long)blocks * (PanelBlockBytes + PanelBlockScales * sizeof(float))), 64);
        var scales = (float*)(panel + (long)blocks * PanelBlockBytes);
        // The shifted schemes' Σqx of every block of every row.
        var xsums = T.Shift == 0 ? null : (int*)NativeMemory.Alloc((nuint)((long)rows * blocks), sizeof(int));
        // Signed int8 (FourRowsSignedPanel512): −qx beside qx, so that each product picks x or −x by its weight's sign with one blend.
        var signed = IsSignedInt8<T>();
        var negated = signed ? (sbyte*)NativeMemory.Alloc((nuint)(rows * xStride)) : null;
        var sums = stackalloc float[4 * PanelColumns];
        try
        {
            if (xsums != null) BlockSums(qx, rows * blocks, xsums);
            if (signed) Negate(qx, rows * xStride, negated);
            for (var j0 = first; j0 < end; j0 += PanelColumns)
            {
                var columns = Math.Min(PanelColumns, end - j0);
                LayOutPanel<T>(w + j0 * rowBytes, rowBytes, columns, blocks, panel, scales);
                if (rows >= 4)
                {
                    // Four rows at a time; the last four overlap the group before when rows is not a multiple of
                    // four (each row's result depends on that row alone, so the overlap rewrites the same values).
                    for (var r = 0; r < rows; r += 4) FourRows(Math.Min(r, rows - 4), 1);
                }
                else
                {
                    // Fewer than four rows: each row four times over, one copy kept.
                    for (var r = 0; r < rows; r++) FourRows(r, 0);
                }

                // Rows r, r + step, r + 2·step, r + 3·step.
                void FourRows(int r, int step)
                {
                    var direct = columns == PanelColumns && step != 0;
                    var target = direct ? y + (long)r * n + j0 : sums;
                    var stride = direct ? n : PanelColumns;
                    var group = new PanelRows(qx + r * xStride, step * xStride, dx + (long)r * blocks, sx + (long)r * blocks, xsums == null ? null : xsums + (long)r * blocks, step * blocks,
                        negated == null ? null : negated + r * xStride);
                    if (signed) FourRowsSignedPanel512(panel, scales, blocks, group, target, stride);
                    else if (wide) FourRowsPanel512<T>(panel, scales, blocks, group, target, stride);
                    else if (path == QuantizedPath.AvxVnni) FourRowsPanel<T, VnniBytes>(panel, scales, blocks, group, target, stride);
                    else FourRowsPanel<T, MaddBytes>(panel, scales, blocks, group, target, stride);
                    if (direct) return;
                    for (var i = 0; i < (step == 0 ? 1 : 4); i++)
                        new Span<float>(sums + i * PanelColumns, columns).CopyTo(new Span<float>(y + (long)(r + i) * n + j0, columns));
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(panel);
            NativeMemory.Free(xsums);
            NativeMemory.Free(negated);
        }
    }

    // int8's blocks laid out as stored, signed (Int8Blocks), rather than shifted for vpdpbusd (Int8Shifted).
    private static bool IsSignedInt8<T>() where T : struct, IBlocks => T.Bytes == Int8Blocks.Bytes && T.Shift == 0;

    // to[i] = −from[i] (the quantized values are within ±127, so none overflows).
    private static void Negate(sbyte* from, long count, sbyte* to)
    {
        var i = 0L;
        for (; i + 32 <= count; i += 32) Avx2.Subtract(Vector256<sbyte>.Zero, Avx.LoadVector256(from + i)).Store(to + i);
        for (; i < count; i++) to[i] = (sbyte)-from[i];
    }

    /// <summary>
    /// Four input rows of a panel product: row i's quantized values at X + i·XStep, and its block scales Dx, block sums Sx
    /// (int4) or Σqx XSums (the shifted schemes) at i·ScaleStep; signed int8's −x at Negated + i·XStep, else null.
    /// </summary>
    private readonly struct PanelRows(sbyte* x, long xStep, float* dx, float* sx, int* xsums, long scaleStep, sbyte* negated)
    {
        public readonly sbyte* X = x, Negated = negated;
        public readonly long XStep = xStep;
        public readonly float* Dx = dx, Sx = sx;
        public readonly int* XSums = xsums;
        public readonly long ScaleStep = scaleStep;
    }

    // Rows w[0..columns) (rowBytes apart) as a panel: per block, the 32 values q of each column as unsigned bytes (T's Values,
    // that is q + T.Shift), interleaved four at a time, then d of each column and, for int4, its minimum m. Missing columns are zeros.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayOutPanel<T>(byte* w, long rowBytes, int columns, int blocks, byte* panel, float* scales) where T : struct, IBlocks
    {
        var bytes = T.Bytes;
        // Eight columns at a time; a half with missing columns reads a zero block in their place.
        var zero = stackalloc byte[64];
        new Span<byte>(zero, 64).Clear();
        var rows = stackalloc byte*[8];
        for (var half = 0; half < 2; half++)
        {
            for (var c = 0; c < 8; c++) rows[c] = 8 * half + c < columns ? w + (8 * half + c) * rowBytes : null;
            for (var b = 0; b < blocks; b++)
            {
                var offset = (long)b * bytes;
                byte* p0 = Block(rows[0], offset, zero), p1 = Block(rows[1], offset, zero), p2 = Block(rows[2], offset, zero), p3 = Block(rows[3], offset, zero);
                byte* p4 = Block(rows[4], offset, zero), p5 = Block(rows[5], offset, zero), p6 = Block(rows[6], offset, zero), p7 = Block(rows[7], offset, zero);
                Interleave(T.Values(p0), T.Values(p1), T.Values(p2), T.Values(p3), T.Values(p4), T.Values(p5), T.Values(p6), T.Values(p7),
                    panel + (long)b * PanelBlockBytes + 32 * half);
                var words = Vector256.Create(Head(p0), Head(p1), Head(p2), Head(p3), Head(p4), Head(p5), Head(p6), Head(p7));
                var d = Halves(Avx2.ShiftLeftLogical(words, 16));
                var s = scales + b * PanelBlockScales + 8 * half;
                Avx.Store(s, d);
                if (T.HasMinimum) Avx.Store(s + PanelColumns, Halves(words));
            }
        }
    }

    // Block b of a packed row (its offset given), or the zero block for a missing row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* Block(byte* row, long offset, byte* zero) => row == null ? zero : row + offset;

    // The 8 × 8 transpose of 32-bit groups: group i of the eight vectors to to + 64·i, as one 256-bit vector.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector256<byte> v0, Vector256<byte> v1, Vector256<byte> v2, Vector256<byte> v3,
        Vector256<byte> v4, Vector256<byte> v5, Vector256<byte> v6, Vector256<byte> v7, byte* to)
    {
        var t0 = Avx2.UnpackLow(v0.AsInt32(), v1.AsInt32());
        var t1 = Avx2.UnpackHigh(v0.AsInt32(), v1.AsInt32());
        var t2 = Avx2.UnpackLow(v2.AsInt32(), v3.AsInt32());
        var t3 = Avx2.UnpackHigh(v2.AsInt32(), v3.AsInt32());
        var t4 = Avx2.UnpackLow(v4.AsInt32(), v5.AsInt32());
        var t5 = Avx2.UnpackHigh(v4.AsInt32(), v5.AsInt32());
        var t6 = Avx2.UnpackLow(v6.AsInt32(), v7.AsInt32());
        var t7 = Avx2.UnpackHigh(v6.AsInt32(), v7.AsInt32());
        // Groups 0 and 4 (u0), 1 and 5 (u1), 2 and 6 (u2), 3 and 7 (u3) of vectors 0..3; u4..u7 the same of vectors 4..7.
        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64());
        var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64());
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64());
        var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64());
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64());
        var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64());
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64());
        var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64());
        Avx.Store((long*)to, Avx2.Permute2x128(u0, u4, 0x20));
        Avx.Store((long*)(to + PanelGroupBytes), Avx2.Permute2x128(u1, u5, 0x20));
        Avx.Store((long*)(to + 2 * PanelGroupBytes), Avx2.Permute2x128(u2, u6, 0x20));
        Avx.Store((long*)(to + 3 * PanelGroupBytes), Avx2.Permute2x128(u3, u7, 0x20));
        Avx.Store((long*)(to + 4 * PanelGroupBytes), Avx2.Permute2x128(u0, u4, 0x31));
        Avx.Store((long*)(to + 5 * PanelGroupBytes), Avx2.Permute2x128(u1, u5, 0x31));
        Avx.Store((long*)(to + 6 * PanelGroupBytes), Avx2.Permute2x128(u2, u6, 0x31));
        Avx.Store((long*)(to + 7 * PanelGroupBytes), Avx2.Permute2x128(u3, u7, 0x31));
    }

    // The sixteen columns of y[i·yStride ..] for the four input rows, on 256-bit vectors, one half of the panel after the
    // other: per block, two sums per row (the even and the odd groups of four values, so that two chains overlap).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRowsPanel<T, TDot>(byte* panel, float* scales, int blocks, PanelRows rows, float* y, long yStride)
        where T : struct, IBlocks
        where TDot : struct, IByteDot
    {
        var (xStep, scaleStep) = (rows.XStep, rows.ScaleStep);
        for (var half = 0; half < 2; half++)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (var b = 0; b < blocks; b++)
            {
                var p = panel + (long)b * PanelBlockBytes + 32 * half;
                var x0 = rows.X + b * 32L;
                var x1 = x0 + xStep;
                var x2 = x1 + xStep;
                var x3 = x2 + xStep;
                // The block's eight groups of four values, unrolled, alternating between the even and the odd sums.
                var (e0, e1, e2, e3) = Group256<TDot>(default, default, default, default, p, x0, x1, x2, x3);
                var (o0, o1, o2, o3) = Group256<TDot>(default, default, default, default, p + PanelGroupBytes, x0 + 4, x1 + 4, x2 + 4, x3 + 4);
                (e0, e1, e2, e3) = Group256<TDot>(e0, e1, e2, e3, p + 2 * PanelGroupBytes, x0 + 8, x1 + 8, x2 + 8, x3 + 8);
                (o0, o1, o2, o3) = Group256<TDot>(o0, o1, o2, o3, p + 3 * PanelGroupBytes, x0 + 12, x1 + 12, x2 + 12, x3 + 12);
                (e0, e1, e2, e3) = Group256<TDot>(e0, e1, e2, e3, p + 4 * PanelGroupBytes, x0 + 16, x1 + 16, x2 + 16, x3 + 16);
                (o0, o1, o2, o3) = Group256<TDot>(o0, o1, o2, o3, p + 5 * PanelGroupBytes, x0 + 20, x1 + 20, x2 + 20, x3 + 20);
                (e0, e1, e2, e3) = Group256<TDot>(e0, e1, e2, e3, p + 6 * PanelGroupBytes, x0 + 24, x1 + 24, x2 + 24, x3 + 24);
                (o0, o1, o2, o3) = Group256<TDot>(o0, o1, o2, o3, p + 7 * PanelGroupBytes, x0 + 28, x1 + 28, x2 + 28, x3 + 28);
                var s = scales + b * PanelBlockScales + 8 * half;
                var d = Avx.LoadVector256(s);
                var m = T.HasMinimum ? Avx.LoadVector256(s + PanelColumns) : default;
                a0 = AddBlock256<T>(a0, TDot.Combine(e0, o0), d, m, rows, b);
                a1 = AddBlock256<T>(a1, TDot.Combine(e1, o1), d, m, rows, b + scaleStep);
                a2 = AddBlock256<T>(a2, TDot.Combine(e2, o2), d, m, rows, b + 2 * scaleStep);
                a3 = AddBlock256<T>(a3, TDot.Combine(e3, o3), d, m, rows, b + 3 * scaleStep);
            }
            var to = y + 8 * half;
            Avx.Store(to, a0);
            Avx.Store(to + yStride, a1);
            Avx.Store(to + 2 * yStride, a2);
            Avx.Store(to + 3 * yStride, a3);
        }
    }

    // a + one block's integer sums of one row times d·dx (less shift · Σqx first; plus m·Σx for int4); i indexes the row's block scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> AddBlock256<T>(Vector256<float> a, Vector256<int> sums, Vector256<float> d, Vector256<float> m, PanelRows rows, long i)
        where T : struct, IBlocks
    {
        if (T.Shift != 0) sums = Avx2.Subtract(sums, Vector256.Create(T.Shift * rows.XSums[i]));
        a = Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), Avx.Multiply(d, Vector256.Create(rows.Dx[i])), a);
        return T.HasMinimum ? Fma.MultiplyAdd(m, Vector256.Create(rows.Sx[i]), a) : a;
    }

    // One group of four values of eight columns at p times four values of each of four rows, added to the rows' sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>) Group256<TDot>(
        Vector256<int> s0, Vector256<int> s1, Vector256<int> s2, Vector256<int> s3, byte* p, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3)
        where TDot : struct, IByteDot
    {
        var w = Avx.LoadVector256(p);
        return (TDot.Add(s0, w, x0), TDot.Add(s1, w, x1), TDot.Add(s2, w, x2), TDot.Add(s3, w, x3));
    }

    // As FourRowsPanel<T, MaddBytes> for the nibble schemes, all sixteen columns per 512-bit vector.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRowsPanel512<T>(byte* panel, float* scales, int blocks, PanelRows rows, float* y, long yStride)
        where T : struct, IBlocks
    {
        var (xStep, scaleStep) = (rows.XStep, rows.ScaleStep);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var p = panel + (long)b * PanelBlockBytes;
            var x0 = rows.X + b * 32L;
            var x1 = x0 + xStep;
            var x2 = x1 + xStep;
            var x3 = x2 + xStep;
            // The block's eight groups of four values, unrolled: a loop's counter and addressing cost as much as the products.
            var (s0, s1, s2, s3) = Group512(default, default, default, default, p, x0, x1, x2, x3);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + PanelGroupBytes, x0 + 4, x1 + 4, x2 + 4, x3 + 4);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 2 * PanelGroupBytes, x0 + 8, x1 + 8, x2 + 8, x3 + 8);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 3 * PanelGroupBytes, x0 + 12, x1 + 12, x2 + 12, x3 + 12);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 4 * PanelGroupBytes, x0 + 16, x1 + 16, x2 + 16, x3 + 16);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 5 * PanelGroupBytes, x0 + 20, x1 + 20, x2 + 20, x3 + 20);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 6 * PanelGroupBytes, x0 + 24, x1 + 24, x2 + 24, x3 + 24);
            (s0, s1, s2, s3) = Group512(s0, s1, s2, s3, p + 7 * PanelGroupBytes, x0 + 28, x1 + 28, x2 + 28, x3 + 28);
            var s = scales + b * PanelBlockScales;
            var d = Avx512F.LoadVector512(s);
            var m = T.HasMinimum ? Avx512F.LoadVector512(s + PanelColumns) : default;
            a0 = AddBlock512<T>(a0, s0, d, m, rows, b);
            a1 = AddBlock512<T>(a1, s1, d, m, rows, b + scaleStep);
            a2 = AddBlock512<T>(a2, s2, d, m, rows, b + 2 * scaleStep);
            a3 = AddBlock512<T>(a3, s3, d, m, rows, b + 3 * scaleStep);
        }
        Avx512F.Store(y, a0);
        Avx512F.Store(y + yStride, a1);
        Avx512F.Store(y + 2 * yStride, a2);
        Avx512F.Store(y + 3 * yStride, a3);
    }

    // int8 without VNNI, sixteen columns per 512-bit vector: per group, |q| of the sixteen columns (vpabsb) against four
    // activations whose sign each byte takes from its q (a blend of x and −x by q < 0), vpmaddubsw's pairs (≤ 2 · 127²,
    // exact) widened by vpmaddwd into int32 sums; then one conversion and one FMA per block, as AddBlock512.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRowsSignedPanel512(byte* panel, float* scales, int blocks, PanelRows rows, float* y, long yStride)
    {
        var (xStep, scaleStep) = (rows.XStep, rows.ScaleStep);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var p = panel + (long)b * PanelBlockBytes;
            var x = rows.X + b * 32L;
            var negated = rows.Negated + b * 32L;
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (var g = 0; g < 8; g++)
            {
                var w = Avx512F.LoadVector512((sbyte*)p + g * PanelGroupBytes);
                var magnitude = Avx512BW.Abs(w);
                var negative = Avx512BW.CompareLessThan(w, Vector512<sbyte>.Zero);
                var at = 4 * g;
                s0 = SignedGroup(s0, magnitude, negative, x + at, negated + at);
                s1 = SignedGroup(s1, magnitude, negative, x + xStep + at, negated + xStep + at);
                s2 = SignedGroup(s2, magnitude, negative, x + 2 * xStep + at, negated + 2 * xStep + at);
                s3 = SignedGroup(s3, magnitude, negative, x + 3 * xStep + at, negated + 3 * xStep + at);
            }
            var d = Avx512F.LoadVector512(scales + b * PanelBlockScales);
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s0), Avx512F.Multiply(d, Vector512.Create(rows.Dx[b])), a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s1), Avx512F.Multiply(d, Vector512.Create(rows.Dx[b + scaleStep])), a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s2), Avx512F.Multiply(d, Vector512.Create(rows.Dx[b + 2 * scaleStep])), a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s3), Avx512F.Multiply(d, Vector512.Create(rows.Dx[b + 3 * scaleStep])), a3);
        }
        Avx512F.Store(y, a0);
        Avx512F.Store(y + yStride, a1);
        Avx512F.Store(y + 2 * yStride, a2);
        Avx512F.Store(y + 3 * yStride, a3);
    }

    // sums + one group's products of |q| with the four activations at x, each byte's taken from −x where its q is negative.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SignedGroup(Vector512<int> sums, Vector512<byte> magnitude, Vector512<sbyte> negative, sbyte* x, sbyte* negated)
    {
        var signed = Avx512BW.BlendVariable(Vector512.Create(*(int*)x).AsSByte(), Vector512.Create(*(int*)negated).AsSByte(), negative);
        return Avx512F.Add(sums, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(magnitude, signed), Vector512.Create((short)1)));
    }

    // As AddBlock256 from a block's int16 pair sums, widened here.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> AddBlock512<T>(Vector512<float> a, Vector512<short> pairs, Vector512<float> d, Vector512<float> m, PanelRows rows, long i)
        where T : struct, IBlocks
    {
        var sums = Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1));
        if (T.Shift != 0) sums = Avx512F.Subtract(sums, Vector512.Create(T.Shift * rows.XSums[i]));
        a = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), Avx512F.Multiply(d, Vector512.Create(rows.Dx[i])), a);
        return T.HasMinimum ? Avx512F.FusedMultiplyAdd(m, Vector512.Create(rows.Sx[i]), a) : a;
    }

    // One group of four values of the sixteen columns at p times four values of each of four rows, added to the rows' int16 pair sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<short>, Vector512<short>, Vector512<short>, Vector512<short>) Group512(
        Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, byte* p, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3)
    {
        var w = Avx512F.LoadVector512(p);
        return (Avx512BW.Add(s0, Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)x0).AsSByte())),
            Avx512BW.Add(s1, Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)x1).AsSByte())),
            Avx512BW.Add(s2, Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)x2).AsSByte())),
            Avx512BW.Add(s3, Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)x3).AsSByte())));
    }

    /// <summary>How the 256-bit panel products add four unsigned bytes of each lane times four signed bytes at x into sums.</summary>
    private interface IByteDot
    {
        static abstract Vector256<int> Add(Vector256<int> sums, Vector256<byte> w, sbyte* x);

        /// <summary>The int32 sums of the two chains.</summary>
        static abstract Vector256<int> Combine(Vector256<int> even, Vector256<int> odd);
    }

    private readonly struct VnniBytes : IByteDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Add(Vector256<int> sums, Vector256<byte> w, sbyte* x) =>
            AvxVnni.MultiplyWideningAndAdd(sums, w, Avx2.BroadcastScalarToVector256((int*)x).AsSByte());

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Combine(Vector256<int> even, Vector256<int> odd) => Avx2.Add(even, odd);
    }

    // vpmaddubsw's int16 pairs (≤ 2 · 15 · 127) summed as int16 over a whole block (≤ 8 · 3810 < 2^15, nibble values
    // only), then widened once: a block's eight products cost nine multiplies, not sixteen.
    private readonly struct MaddBytes : IByteDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Add(Vector256<int> sums, Vector256<byte> w, sbyte* x) =>
            Avx2.Add(sums.AsInt16(), Avx2.MultiplyAddAdjacent(w, Avx2.BroadcastScalarToVector256((int*)x).AsSByte())).AsInt32();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Combine(Vector256<int> even, Vector256<int> odd) =>
            Avx2.MultiplyAddAdjacent(Avx2.Add(even.AsInt16(), odd.AsInt16()), Vector256.Create((short)1));
    }
}
