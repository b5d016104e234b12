using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// y = x·Wᵀ for row-major x [rows, k], W [n, k] (a Linear layer's weight as stored) and y [rows, n]
/// (rows yStride apart, so that y can be a block of columns of a wider output), computed for one range
/// of output columns so that threads can split W between them.
/// One-row products read one weight row at a time, front to back: a single stream, which memory serves
/// faster than four rows read side by side (0.96-0.99 of the read bandwidth against 0.81-0.94 on the AMD
/// EPYC VM, docs/performance.md). Products of several rows keep four weight rows (two on AVX2) in cache while
/// the input rows pass by, three at a time (two or one for the last), and the first pass over a group fetches
/// the next group into L2, so that memory keeps streaming weights while the cores compute (a batched decode
/// step's several rows).
/// </summary>
/// <remarks>
/// Every path computes each output the same way: the 8-wide chunks of k alternate between two accumulators
/// (even chunks into one, odd into the other, in order, by fused multiply-adds), which are added, their
/// lanes summed, then the scalar tail. So a row's result is bit for bit the same whatever the number of
/// rows in the call, however the columns are split between threads and on either vector path, and a batched
/// decode step gives each sequence exactly what a one-sequence step gives it (Serving/BatchedDecoder).
/// </remarks>
public static unsafe class LinearMath
{
    /// <summary>Computes y[:, first..end) for every input row; row r of y starts at y + r·yStride.</summary>
    public static void Multiply(float* x, float* w, float* y, int rows, int k, int yStride, int first, int end) =>
        Multiply(KernelPaths.Best, x, w, y, rows, k, yStride, first, end);

    /// <summary>
    /// As above on one instruction-set path: <see cref="KernelPath.Avx512"/> tiles four weight rows (their 24
    /// accumulators need its 32 registers), <see cref="KernelPath.Avx2"/> two, with the same arithmetic (every
    /// output bit for bit the same); <see cref="KernelPath.Portable"/> is plain loops.
    /// </summary>
    public static void Multiply(KernelPath path, float* x, float* w, float* y, int rows, int k, int yStride, int first, int end)
    {
        if (!KernelPaths.IsSupported(path)) throw new PlatformNotSupportedException($"this machine cannot run the {path} path");
        if (path == KernelPath.Portable)
        {
            Portable(x, w, y, rows, k, yStride, first, end);
            return;
        }
        if (rows == 1)
        {
            for (var j = first; j < end; j++) y[j] = Dot(w + (long)j * k, x, k);
            return;
        }
        // Weight rows outermost: a group of them stays in cache while every input row passes by, so W is read
        // from memory once whatever the number of rows.
        var width = path == KernelPath.Avx512 ? 4 : 2;
        var j0 = first;
        for (; j0 + width <= end; j0 += width)
        {
            var group = w + (long)j0 * k;
            // The next group of this column range, fetched during the first pass (none after the last group).
            var next = j0 + 2 * width <= end ? group + width * (long)k : null;
            var row = 0;
            for (; row + 3 <= rows; row += 3, next = null)
            {
                if (width == 4) FourByThree(x + (long)row * k, group, y + (long)row * yStride + j0, yStride, k, next);
                else TwoByThree(x + (long)row * k, group, y + (long)row * yStride + j0, yStride, k, next);
            }
            if (rows - row == 2)
            {
                if (width == 4) FourByTwo(x + (long)row * k, group, y + (long)row * yStride + j0, yStride, k, next);
                else TwoByTwo(x + (long)row * k, group, y + (long)row * yStride + j0, yStride, k, next);
            }
            else if (rows - row == 1)
            {
                for (var c = 0; c < width; c++) y[(long)row * yStride + j0 + c] = Dot(group + (long)c * k, x + (long)row * k, k);
            }
        }
        for (; j0 < end; j0++)
        {
            for (var row = 0; row < rows; row++) y[(long)row * yStride + j0] = Dot(w + (long)j0 * k, x + (long)row * k, k);
        }
    }

    // One weight row: chunks 0, 2, 4, ... into a0, chunks 1, 3, 5, ... into a1 (two chains of multiply-adds,
    // so that the core is not waiting on one). Each step asks for the line 4 KB ahead (the next row's start near a
    // row's end; past the weight's end is harmless): whole-model f32 decode measured 4-8 % faster with it (docs/performance.md).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* w, float* x, int k)
    {
        Vector256<float> a0 = default, a1 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            Sse.Prefetch0(w + i + PrefetchAhead);
            a0 = Fma.MultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(x + i + 8), a1);
        }
        if (i + 8 <= k)
        {
            a0 = Fma.MultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
            i += 8;
        }
        var sum = Vector256.Sum(a0 + a1);
        for (; i < k; i++) sum += w[i] * x[i];
        return sum;
    }

    /// <summary>Floats ahead of its reads (4 KB) that the one-row loop prefetches.</summary>
    private const int PrefetchAhead = 1024;

    // Into L2, the cache line at i of each of the next group's four weight rows (a tile steps 16 weights, one line).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchFour(float* next, int k, int i)
    {
        if (next == null) return;
        Sse.Prefetch1(next + i);
        Sse.Prefetch1(next + k + i);
        Sse.Prefetch1(next + 2L * k + i);
        Sse.Prefetch1(next + 3L * k + i);
    }

    // As PrefetchFour for a group of two.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTwo(float* next, int k, int i)
    {
        if (next == null) return;
        Sse.Prefetch1(next + i);
        Sse.Prefetch1(next + k + i);
    }

    // Four weight rows against three input rows, two accumulators per output (24 in all, which only AVX-512's 32
    // registers hold): per 16 weights, twelve products share seven loads, twice.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourByThree(float* x, float* w, float* y, int yStride, int k, float* next)
    {
        float* x0 = x, x1 = x + k, x2 = x + 2L * k;
        float* w0 = w, w1 = w + k, w2 = w + 2L * k, w3 = w + 3L * k;
        // a{weight row}{input row}{chunk parity}
        Vector256<float> a000 = default, a001 = default, a010 = default, a011 = default, a020 = default, a021 = default;
        Vector256<float> a100 = default, a101 = default, a110 = default, a111 = default, a120 = default, a121 = default;
        Vector256<float> a200 = default, a201 = default, a210 = default, a211 = default, a220 = default, a221 = default;
        Vector256<float> a300 = default, a301 = default, a310 = default, a311 = default, a320 = default, a321 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            PrefetchFour(next, k, i);
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            a200 = Fma.MultiplyAdd(v2, u, a200);
            a300 = Fma.MultiplyAdd(v3, u, a300);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            a210 = Fma.MultiplyAdd(v2, u, a210);
            a310 = Fma.MultiplyAdd(v3, u, a310);
            u = Vector256.Load(x2 + i);
            a020 = Fma.MultiplyAdd(v0, u, a020);
            a120 = Fma.MultiplyAdd(v1, u, a120);
            a220 = Fma.MultiplyAdd(v2, u, a220);
            a320 = Fma.MultiplyAdd(v3, u, a320);
            v0 = Vector256.Load(w0 + i + 8);
            v1 = Vector256.Load(w1 + i + 8);
            v2 = Vector256.Load(w2 + i + 8);
            v3 = Vector256.Load(w3 + i + 8);
            u = Vector256.Load(x0 + i + 8);
            a001 = Fma.MultiplyAdd(v0, u, a001);
            a101 = Fma.MultiplyAdd(v1, u, a101);
            a201 = Fma.MultiplyAdd(v2, u, a201);
            a301 = Fma.MultiplyAdd(v3, u, a301);
            u = Vector256.Load(x1 + i + 8);
            a011 = Fma.MultiplyAdd(v0, u, a011);
            a111 = Fma.MultiplyAdd(v1, u, a111);
            a211 = Fma.MultiplyAdd(v2, u, a211);
            a311 = Fma.MultiplyAdd(v3, u, a311);
            u = Vector256.Load(x2 + i + 8);
            a021 = Fma.MultiplyAdd(v0, u, a021);
            a121 = Fma.MultiplyAdd(v1, u, a121);
            a221 = Fma.MultiplyAdd(v2, u, a221);
            a321 = Fma.MultiplyAdd(v3, u, a321);
        }
        if (i + 8 <= k)
        {
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            a200 = Fma.MultiplyAdd(v2, u, a200);
            a300 = Fma.MultiplyAdd(v3, u, a300);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            a210 = Fma.MultiplyAdd(v2, u, a210);
            a310 = Fma.MultiplyAdd(v3, u, a310);
            u = Vector256.Load(x2 + i);
            a020 = Fma.MultiplyAdd(v0, u, a020);
            a120 = Fma.MultiplyAdd(v1, u, a120);
            a220 = Fma.MultiplyAdd(v2, u, a220);
            a320 = Fma.MultiplyAdd(v3, u, a320);
            i += 8;
        }
        Span<float> s = stackalloc float[12];
        s[0] = Vector256.Sum(a000 + a001); s[1] = Vector256.Sum(a100 + a101); s[2] = Vector256.Sum(a200 + a201); s[3] = Vector256.Sum(a300 + a301);
        s[4] = Vector256.Sum(a010 + a011); s[5] = Vector256.Sum(a110 + a111); s[6] = Vector256.Sum(a210 + a211); s[7] = Vector256.Sum(a310 + a311);
        s[8] = Vector256.Sum(a020 + a021); s[9] = Vector256.Sum(a120 + a121); s[10] = Vector256.Sum(a220 + a221); s[11] = Vector256.Sum(a320 + a321);
        FinishTile(x, w, y, yStride, k, i, s, 4);
    }

    // Four weight rows against the last two input rows: the group read once, where two one-row products would read it twice.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourByTwo(float* x, float* w, float* y, int yStride, int k, float* next)
    {
        float* x0 = x, x1 = x + k;
        float* w0 = w, w1 = w + k, w2 = w + 2L * k, w3 = w + 3L * k;
        // a{weight row}{input row}{chunk parity}
        Vector256<float> a000 = default, a001 = default, a010 = default, a011 = default;
        Vector256<float> a100 = default, a101 = default, a110 = default, a111 = default;
        Vector256<float> a200 = default, a201 = default, a210 = default, a211 = default;
        Vector256<float> a300 = default, a301 = default, a310 = default, a311 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            PrefetchFour(next, k, i);
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            a200 = Fma.MultiplyAdd(v2, u, a200);
            a300 = Fma.MultiplyAdd(v3, u, a300);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            a210 = Fma.MultiplyAdd(v2, u, a210);
            a310 = Fma.MultiplyAdd(v3, u, a310);
            v0 = Vector256.Load(w0 + i + 8);
            v1 = Vector256.Load(w1 + i + 8);
            v2 = Vector256.Load(w2 + i + 8);
            v3 = Vector256.Load(w3 + i + 8);
            u = Vector256.Load(x0 + i + 8);
            a001 = Fma.MultiplyAdd(v0, u, a001);
            a101 = Fma.MultiplyAdd(v1, u, a101);
            a201 = Fma.MultiplyAdd(v2, u, a201);
            a301 = Fma.MultiplyAdd(v3, u, a301);
            u = Vector256.Load(x1 + i + 8);
            a011 = Fma.MultiplyAdd(v0, u, a011);
            a111 = Fma.MultiplyAdd(v1, u, a111);
            a211 = Fma.MultiplyAdd(v2, u, a211);
            a311 = Fma.MultiplyAdd(v3, u, a311);
        }
        if (i + 8 <= k)
        {
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            a200 = Fma.MultiplyAdd(v2, u, a200);
            a300 = Fma.MultiplyAdd(v3, u, a300);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            a210 = Fma.MultiplyAdd(v2, u, a210);
            a310 = Fma.MultiplyAdd(v3, u, a310);
            i += 8;
        }
        Span<float> s = stackalloc float[8];
        s[0] = Vector256.Sum(a000 + a001); s[1] = Vector256.Sum(a100 + a101); s[2] = Vector256.Sum(a200 + a201); s[3] = Vector256.Sum(a300 + a301);
        s[4] = Vector256.Sum(a010 + a011); s[5] = Vector256.Sum(a110 + a111); s[6] = Vector256.Sum(a210 + a211); s[7] = Vector256.Sum(a310 + a311);
        FinishTile(x, w, y, yStride, k, i, s, 4);
    }

    // Two weight rows against three input rows (twelve accumulators, for AVX2's 16 registers): ten loads per
    // twelve products, 15-20 % slower than FourByThree where both run (docs/performance.md).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoByThree(float* x, float* w, float* y, int yStride, int k, float* next)
    {
        float* x0 = x, x1 = x + k, x2 = x + 2L * k;
        float* w0 = w, w1 = w + k;
        // a{weight row}{input row}{chunk parity}
        Vector256<float> a000 = default, a001 = default, a010 = default, a011 = default, a020 = default, a021 = default;
        Vector256<float> a100 = default, a101 = default, a110 = default, a111 = default, a120 = default, a121 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            PrefetchTwo(next, k, i);
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            u = Vector256.Load(x2 + i);
            a020 = Fma.MultiplyAdd(v0, u, a020);
            a120 = Fma.MultiplyAdd(v1, u, a120);
            v0 = Vector256.Load(w0 + i + 8);
            v1 = Vector256.Load(w1 + i + 8);
            u = Vector256.Load(x0 + i + 8);
            a001 = Fma.MultiplyAdd(v0, u, a001);
            a101 = Fma.MultiplyAdd(v1, u, a101);
            u = Vector256.Load(x1 + i + 8);
            a011 = Fma.MultiplyAdd(v0, u, a011);
            a111 = Fma.MultiplyAdd(v1, u, a111);
            u = Vector256.Load(x2 + i + 8);
            a021 = Fma.MultiplyAdd(v0, u, a021);
            a121 = Fma.MultiplyAdd(v1, u, a121);
        }
        if (i + 8 <= k)
        {
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            u = Vector256.Load(x2 + i);
            a020 = Fma.MultiplyAdd(v0, u, a020);
            a120 = Fma.MultiplyAdd(v1, u, a120);
            i += 8;
        }
        Span<float> s = stackalloc float[6];
        s[0] = Vector256.Sum(a000 + a001); s[1] = Vector256.Sum(a100 + a101);
        s[2] = Vector256.Sum(a010 + a011); s[3] = Vector256.Sum(a110 + a111);
        s[4] = Vector256.Sum(a020 + a021); s[5] = Vector256.Sum(a120 + a121);
        FinishTile(x, w, y, yStride, k, i, s, 2);
    }

    // Two weight rows against the last two input rows, as FourByTwo.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoByTwo(float* x, float* w, float* y, int yStride, int k, float* next)
    {
        float* x0 = x, x1 = x + k;
        float* w0 = w, w1 = w + k;
        // a{weight row}{input row}{chunk parity}
        Vector256<float> a000 = default, a001 = default, a010 = default, a011 = default;
        Vector256<float> a100 = default, a101 = default, a110 = default, a111 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            PrefetchTwo(next, k, i);
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            v0 = Vector256.Load(w0 + i + 8);
            v1 = Vector256.Load(w1 + i + 8);
            u = Vector256.Load(x0 + i + 8);
            a001 = Fma.MultiplyAdd(v0, u, a001);
            a101 = Fma.MultiplyAdd(v1, u, a101);
            u = Vector256.Load(x1 + i + 8);
            a011 = Fma.MultiplyAdd(v0, u, a011);
            a111 = Fma.MultiplyAdd(v1, u, a111);
        }
        if (i + 8 <= k)
        {
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var u = Vector256.Load(x0 + i);
            a000 = Fma.MultiplyAdd(v0, u, a000);
            a100 = Fma.MultiplyAdd(v1, u, a100);
            u = Vector256.Load(x1 + i);
            a010 = Fma.MultiplyAdd(v0, u, a010);
            a110 = Fma.MultiplyAdd(v1, u, a110);
            i += 8;
        }
        Span<float> s = stackalloc float[4];
        s[0] = Vector256.Sum(a000 + a001); s[1] = Vector256.Sum(a100 + a101);
        s[2] = Vector256.Sum(a010 + a011); s[3] = Vector256.Sum(a110 + a111);
        FinishTile(x, w, y, yStride, k, i, s, 2);
    }

    // The end of a tile of input rows by `width` weight rows: `sums` holds each output's vector sum (`width` per
    // input row, in order); the scalar tail from column `i` is added to it, in order, and the results are stored.
    private static void FinishTile(float* x, float* w, float* y, int yStride, int k, int i, Span<float> sums, int width)
    {
        var rows = sums.Length / width;
        for (; i < k; i++)
        {
            for (var r = 0; r < rows; r++)
            {
                var xi = x[r * (long)k + i];
                for (var c = 0; c < width; c++) sums[r * width + c] += w[c * (long)k + i] * xi;
            }
        }
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < width; c++) y[r * (long)yStride + c] = sums[r * width + c];
        }
    }

    // Machines without FMA: plain loops, correct and slow.
    private static void Portable(float* x, float* w, float* y, int rows, int k, int yStride, int first, int end)
    {
        for (var row = 0; row < rows; row++)
        {
            var xr = x + (long)row * k;
            for (var j = first; j < end; j++)
            {
                var wj = w + (long)j * k;
                var sum = 0f;
                for (var i = 0; i < k; i++) sum += wj[i] * xr[i];
                y[(long)row * yStride + j] = sum;
            }
        }
    }
}
