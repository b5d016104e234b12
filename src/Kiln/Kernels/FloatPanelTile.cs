using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// The several-row (prefill) tile of the 16-bit and quantized products: y[r, 0..columns) for every input
/// row r against a panel of <see cref="Columns"/> weight rows already widened or dequantized to float32
/// (HalfLinearMath, QuantizedMath.Panels.cs). The conversion is paid once per weight row whatever the
/// number of input rows; the tile is then pure float32 multiply-adds with every load feeding several.
/// AVX-512: six input rows by four weight rows, 24 accumulators in the 32 zmm registers, ten loads per
/// 24 FMAs. AVX2: three by four, LinearMath's tile. The panel is walked in slices of <see cref="SliceFloats"/>
/// with the accumulators kept in memory between slices, so that a slice of the panel stays in L1 while
/// every input row passes by (a [4, 5632] panel is 90 KB, twice L1).
/// </summary>
/// <remarks>
/// Each output is one accumulator of the path's vector width over k (FMAs in order of k, whatever the
/// slicing, as the accumulator is kept whole), its lanes summed, then the scalar tail in order, in every
/// tile shape: so a row's result does not depend on how many rows the call has or where the row falls in
/// the tiles, and a prompt prefilled in chunks gets exactly the logits of one prefill (Serving/BatchedDecoder).
/// </remarks>
public static unsafe class FloatPanelTile
{
    /// <summary>Weight rows per panel.</summary>
    public const int Columns = 4;

    /// <summary>
    /// Floats of each weight row per slice: 4 · 1024 · 4 B = 16 KB of panel and six input rows' 24 KB
    /// fit this machine's 48 KB L1 together. A multiple of 16 (a zmm).
    /// </summary>
    public const int SliceFloats = 1024;

    /// <summary>Floats between panel rows for rows of k: k rounded up to a cache line, so every row starts aligned.</summary>
    public static long Stride(int k) => (k + 15L) & ~15L;

    /// <summary>
    /// y[r·yStride + c] for r &lt; rows, c &lt; columns, from x [rows, k] and the panel (<see cref="Columns"/>
    /// rows <paramref name="panelStride"/> floats apart, rows past <paramref name="columns"/> finite, as they
    /// are multiplied but not stored). <paramref name="sums"/>: rows · Columns · 16 floats of scratch.
    /// </summary>
    public static void Multiply(float* x, float* panel, long panelStride, float* y, int rows, int k, int yStride, int columns, float* sums, KernelPath path)
    {
        if (path == KernelPath.Avx512) Multiply512(x, panel, panelStride, y, rows, k, yStride, columns, sums);
        else Multiply256(x, panel, panelStride, y, rows, k, yStride, columns, sums);
    }

    /// <summary>Floats of scratch <see cref="Multiply"/> needs for <paramref name="rows"/> input rows.</summary>
    public static long ScratchFloats(int rows) => (long)rows * Columns * 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply512(float* x, float* panel, long panelStride, float* y, int rows, int k, int yStride, int columns, float* sums)
    {
        var whole = k & ~15;
        new Span<float>(sums, (int)ScratchFloats(rows)).Clear();
        for (var from = 0; from < whole; from += SliceFloats)
        {
            var to = Math.Min(whole, from + SliceFloats);
            var row = 0;
            for (; row + 6 <= rows; row += 6) SixRows512(x + (long)row * k, k, panel, panelStride, from, to, sums + row * Columns * 16L);
            for (; row < rows; row++) OneRow512(x + (long)row * k, panel, panelStride, from, to, sums + row * Columns * 16L);
        }
        for (var row = 0; row < rows; row++)
        {
            var xr = x + (long)row * k;
            for (var c = 0; c < columns; c++)
            {
                var sum = Vector512.Sum(Vector512.Load(sums + (row * Columns + c) * 16L));
                var w = panel + c * panelStride;
                for (var i = whole; i < k; i++) sum += w[i] * xr[i];
                y[(long)row * yStride + c] = sum;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply256(float* x, float* panel, long panelStride, float* y, int rows, int k, int yStride, int columns, float* sums)
    {
        var whole = k & ~7;
        new Span<float>(sums, (int)ScratchFloats(rows)).Clear();
        for (var from = 0; from < whole; from += SliceFloats)
        {
            var to = Math.Min(whole, from + SliceFloats);
            var row = 0;
            for (; row + 3 <= rows; row += 3) ThreeRows256(x + (long)row * k, k, panel, panelStride, from, to, sums + row * Columns * 16L);
            for (; row < rows; row++) OneRow256(x + (long)row * k, panel, panelStride, from, to, sums + row * Columns * 16L);
        }
        for (var row = 0; row < rows; row++)
        {
            var xr = x + (long)row * k;
            for (var c = 0; c < columns; c++)
            {
                var sum = Vector256.Sum(Vector256.Load(sums + (row * Columns + c) * 16L));
                var w = panel + c * panelStride;
                for (var i = whole; i < k; i++) sum += w[i] * xr[i];
                y[(long)row * yStride + c] = sum;
            }
        }
    }

    // Six input rows (k apart) by the panel's four rows over [from, to); row r's accumulator for column c
    // at acc + (r·4 + c)·16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SixRows512(float* x, int k, float* panel, long panelStride, int from, int to, float* acc)
    {
        float* w0 = panel, w1 = panel + panelStride, w2 = panel + 2 * panelStride, w3 = panel + 3 * panelStride;
        float* x0 = x, x1 = x + k, x2 = x + 2L * k, x3 = x + 3L * k, x4 = x + 4L * k, x5 = x + 5L * k;
        var a00 = Vector512.Load(acc); var a01 = Vector512.Load(acc + 16); var a02 = Vector512.Load(acc + 32); var a03 = Vector512.Load(acc + 48);
        var a10 = Vector512.Load(acc + 64); var a11 = Vector512.Load(acc + 80); var a12 = Vector512.Load(acc + 96); var a13 = Vector512.Load(acc + 112);
        var a20 = Vector512.Load(acc + 128); var a21 = Vector512.Load(acc + 144); var a22 = Vector512.Load(acc + 160); var a23 = Vector512.Load(acc + 176);
        var a30 = Vector512.Load(acc + 192); var a31 = Vector512.Load(acc + 208); var a32 = Vector512.Load(acc + 224); var a33 = Vector512.Load(acc + 240);
        var a40 = Vector512.Load(acc + 256); var a41 = Vector512.Load(acc + 272); var a42 = Vector512.Load(acc + 288); var a43 = Vector512.Load(acc + 304);
        var a50 = Vector512.Load(acc + 320); var a51 = Vector512.Load(acc + 336); var a52 = Vector512.Load(acc + 352); var a53 = Vector512.Load(acc + 368);
        for (var i = from; i < to; i += 16)
        {
            var v0 = Vector512.Load(w0 + i);
            var v1 = Vector512.Load(w1 + i);
            var v2 = Vector512.Load(w2 + i);
            var v3 = Vector512.Load(w3 + i);
            var u = Vector512.Load(x0 + i);
            a00 = Avx512F.FusedMultiplyAdd(v0, u, a00); a01 = Avx512F.FusedMultiplyAdd(v1, u, a01); a02 = Avx512F.FusedMultiplyAdd(v2, u, a02); a03 = Avx512F.FusedMultiplyAdd(v3, u, a03);
            u = Vector512.Load(x1 + i);
            a10 = Avx512F.FusedMultiplyAdd(v0, u, a10); a11 = Avx512F.FusedMultiplyAdd(v1, u, a11); a12 = Avx512F.FusedMultiplyAdd(v2, u, a12); a13 = Avx512F.FusedMultiplyAdd(v3, u, a13);
            u = Vector512.Load(x2 + i);
            a20 = Avx512F.FusedMultiplyAdd(v0, u, a20); a21 = Avx512F.FusedMultiplyAdd(v1, u, a21); a22 = Avx512F.FusedMultiplyAdd(v2, u, a22); a23 = Avx512F.FusedMultiplyAdd(v3, u, a23);
            u = Vector512.Load(x3 + i);
            a30 = Avx512F.FusedMultiplyAdd(v0, u, a30); a31 = Avx512F.FusedMultiplyAdd(v1, u, a31); a32 = Avx512F.FusedMultiplyAdd(v2, u, a32); a33 = Avx512F.FusedMultiplyAdd(v3, u, a33);
            u = Vector512.Load(x4 + i);
            a40 = Avx512F.FusedMultiplyAdd(v0, u, a40); a41 = Avx512F.FusedMultiplyAdd(v1, u, a41); a42 = Avx512F.FusedMultiplyAdd(v2, u, a42); a43 = Avx512F.FusedMultiplyAdd(v3, u, a43);
            u = Vector512.Load(x5 + i);
            a50 = Avx512F.FusedMultiplyAdd(v0, u, a50); a51 = Avx512F.FusedMultiplyAdd(v1, u, a51); a52 = Avx512F.FusedMultiplyAdd(v2, u, a52); a53 = Avx512F.FusedMultiplyAdd(v3, u, a53);
        }
        a00.Store(acc); a01.Store(acc + 16); a02.Store(acc + 32); a03.Store(acc + 48);
        a10.Store(acc + 64); a11.Store(acc + 80); a12.Store(acc + 96); a13.Store(acc + 112);
        a20.Store(acc + 128); a21.Store(acc + 144); a22.Store(acc + 160); a23.Store(acc + 176);
        a30.Store(acc + 192); a31.Store(acc + 208); a32.Store(acc + 224); a33.Store(acc + 240);
        a40.Store(acc + 256); a41.Store(acc + 272); a42.Store(acc + 288); a43.Store(acc + 304);
        a50.Store(acc + 320); a51.Store(acc + 336); a52.Store(acc + 352); a53.Store(acc + 368);
    }

    // One input row by the panel's four rows (the rows left after the groups of six), SixRows512's arithmetic.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRow512(float* x, float* panel, long panelStride, int from, int to, float* acc)
    {
        float* w0 = panel, w1 = panel + panelStride, w2 = panel + 2 * panelStride, w3 = panel + 3 * panelStride;
        var a0 = Vector512.Load(acc); var a1 = Vector512.Load(acc + 16); var a2 = Vector512.Load(acc + 32); var a3 = Vector512.Load(acc + 48);
        for (var i = from; i < to; i += 16)
        {
            var u = Vector512.Load(x + i);
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(w0 + i), u, a0);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(w1 + i), u, a1);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(w2 + i), u, a2);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(w3 + i), u, a3);
        }
        a0.Store(acc); a1.Store(acc + 16); a2.Store(acc + 32); a3.Store(acc + 48);
    }

    // Three input rows by four weight rows, 256-bit (LinearMath's tile); accumulators at acc + (r·4 + c)·16 as above.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ThreeRows256(float* x, int k, float* panel, long panelStride, int from, int to, float* acc)
    {
        float* w0 = panel, w1 = panel + panelStride, w2 = panel + 2 * panelStride, w3 = panel + 3 * panelStride;
        float* x0 = x, x1 = x + k, x2 = x + 2L * k;
        var a00 = Vector256.Load(acc); var a01 = Vector256.Load(acc + 16); var a02 = Vector256.Load(acc + 32); var a03 = Vector256.Load(acc + 48);
        var a10 = Vector256.Load(acc + 64); var a11 = Vector256.Load(acc + 80); var a12 = Vector256.Load(acc + 96); var a13 = Vector256.Load(acc + 112);
        var a20 = Vector256.Load(acc + 128); var a21 = Vector256.Load(acc + 144); var a22 = Vector256.Load(acc + 160); var a23 = Vector256.Load(acc + 176);
        for (var i = from; i < to; i += 8)
        {
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            var u = Vector256.Load(x0 + i);
            a00 = Fma.MultiplyAdd(v0, u, a00); a01 = Fma.MultiplyAdd(v1, u, a01); a02 = Fma.MultiplyAdd(v2, u, a02); a03 = Fma.MultiplyAdd(v3, u, a03);
            u = Vector256.Load(x1 + i);
            a10 = Fma.MultiplyAdd(v0, u, a10); a11 = Fma.MultiplyAdd(v1, u, a11); a12 = Fma.MultiplyAdd(v2, u, a12); a13 = Fma.MultiplyAdd(v3, u, a13);
            u = Vector256.Load(x2 + i);
            a20 = Fma.MultiplyAdd(v0, u, a20); a21 = Fma.MultiplyAdd(v1, u, a21); a22 = Fma.MultiplyAdd(v2, u, a22); a23 = Fma.MultiplyAdd(v3, u, a23);
        }
        a00.Store(acc); a01.Store(acc + 16); a02.Store(acc + 32); a03.Store(acc + 48);
        a10.Store(acc + 64); a11.Store(acc + 80); a12.Store(acc + 96); a13.Store(acc + 112);
        a20.Store(acc + 128); a21.Store(acc + 144); a22.Store(acc + 160); a23.Store(acc + 176);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRow256(float* x, float* panel, long panelStride, int from, int to, float* acc)
    {
        float* w0 = panel, w1 = panel + panelStride, w2 = panel + 2 * panelStride, w3 = panel + 3 * panelStride;
        var a0 = Vector256.Load(acc); var a1 = Vector256.Load(acc + 16); var a2 = Vector256.Load(acc + 32); var a3 = Vector256.Load(acc + 48);
        for (var i = from; i < to; i += 8)
        {
            var u = Vector256.Load(x + i);
            a0 = Fma.MultiplyAdd(Vector256.Load(w0 + i), u, a0);
            a1 = Fma.MultiplyAdd(Vector256.Load(w1 + i), u, a1);
            a2 = Fma.MultiplyAdd(Vector256.Load(w2 + i), u, a2);
            a3 = Fma.MultiplyAdd(Vector256.Load(w3 + i), u, a3);
        }
        a0.Store(acc); a1.Store(acc + 16); a2.Store(acc + 32); a3.Store(acc + 48);
    }
}
