using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// <see cref="LinearMath"/>'s product over a weight stored as 16-bit floats (bf16 or f16,
/// <typeparamref name="TWeights"/>): x and y stay float32 and so does every sum; only the weight is read
/// as stored, half the bytes of float32. One-row products convert each weight vector in registers as
/// the row streams by (a single stream, one weight row after the other, as LinearMath's); products of several
/// rows convert a panel of four weight rows once into float32 and run <see cref="FloatPanelTile"/> over
/// it, so the conversion is paid once per weight row whatever the number of input rows. The caller names
/// the <see cref="KernelPath"/>: both kinds of product have 256-bit and 512-bit forms (a one-row product on the
/// AVX-512 path reads rows shorter than the format's <see cref="IHalfWeights.Wide512MinimumK"/> with the 256-bit loop).
/// </summary>
public static unsafe class HalfLinearMath<TWeights> where TWeights : IHalfWeights
{
    /// <summary>Computes y[:, first..end) for every input row; row r of y starts at y + r·yStride.</summary>
    public static void Multiply(float* x, ushort* w, float* y, int rows, int k, int yStride, int first, int end, KernelPath path)
    {
        if (!KernelPaths.IsSupported(path)) throw new PlatformNotSupportedException($"kernel path {path} is not supported by this machine");
        if (path == KernelPath.Portable)
        {
            Portable(x, w, y, rows, k, yStride, first, end);
            return;
        }
        if (rows == 1 && path == KernelPath.Avx512 && k >= Wide512MinimumK)
        {
            for (var j = first; j < end; j++) y[j] = Dot512(w + (long)j * k, x, k);
            return;
        }
        if (rows == 1)
        {
            for (var j = first; j < end; j++) y[j] = Dot(w + (long)j * k, x, k);
            return;
        }
        // Four weight rows widened once, then every input row through the float tile (FloatPanelTile).
        var stride = FloatPanelTile.Stride(k);
        var panelFloats = FloatPanelTile.Columns * stride;
        var panel = (float*)NativeMemory.AlignedAlloc((nuint)((panelFloats + FloatPanelTile.ScratchFloats(rows)) * sizeof(float)), 64);
        try
        {
            // Rows past a last short panel are multiplied but not stored: zeros, not whatever the allocation held.
            new Span<float>(panel, (int)panelFloats).Clear();
            for (var j0 = first; j0 < end; j0 += FloatPanelTile.Columns)
            {
                var columns = Math.Min(FloatPanelTile.Columns, end - j0);
                for (var c = 0; c < columns; c++) Widen(w + (long)(j0 + c) * k, panel + c * stride, k, path);
                FloatPanelTile.Multiply(x, panel, stride, y + j0, rows, k, yStride, columns, panel + panelFloats, path);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(panel);
        }
    }

    // Weights a one-row loop asks the cache for ahead of its reads (4 KB; the next row's start near
    // a row's end, since rows are contiguous; a prefetch past the weight's end is harmless). One line per
    // 32 weights of each row read. Measured (docs/performance.md): one-row products over a weight far larger than the
    // cache ran 15-30% faster for bf16 with a 2 KB prefetch, and more for f16, whose conversion presumably leaves the
    // core fewer loads in flight for the hardware prefetcher alone; 4 KB then gave whole-model bf16 decode 8-12% more
    // at one thread than 2 KB.
    private const int PrefetchAhead = 2048;

    // Whether those prefetches are made at all (the format's choice, CpuTuning): a constant once the loops are compiled at tier 1.
    private static readonly bool Prefetches = TWeights.PrefetchesAhead;

    // The shortest row a one-row product on the AVX-512 path reads with 512-bit vectors (the format's choice, CpuTuning);
    // shorter rows take the 256-bit loop.
    private static readonly int Wide512MinimumK = TWeights.Wide512MinimumK;

    // One weight row, four independent accumulators: consecutive calls read W as one sequential stream.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(ushort* w, float* x, int k)
    {
        // Read once per row: a generic class's static field in the loop would be looked up at every step in Native AOT.
        var prefetches = Prefetches;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var i = 0;
        for (; i + 32 <= k; i += 32)
        {
            if (prefetches) Sse.Prefetch0(w + i + PrefetchAhead);
            var finite = TWeights.AllFinite32(w + i);
            a0 = Fma.MultiplyAdd(Load8(w + i, finite), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(Load8(w + i + 8, finite), Vector256.Load(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(Load8(w + i + 16, finite), Vector256.Load(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(Load8(w + i + 24, finite), Vector256.Load(x + i + 24), a3);
        }
        for (; i + 8 <= k; i += 8) a0 = Fma.MultiplyAdd(TWeights.Load8(w + i), Vector256.Load(x + i), a0);
        var sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < k; i++) sum += TWeights.ToSingle(w[i]) * x[i];
        return sum;
    }

    // Dot with 512-bit vectors: half the instructions per weight, where the f16 conversion dominates.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot512(ushort* w, float* x, int k)
    {
        var prefetches = Prefetches;
        Vector512<float> a0 = default, a1 = default;
        var i = 0;
        for (; i + 32 <= k; i += 32)
        {
            if (prefetches) Sse.Prefetch0(w + i + PrefetchAhead);
            var finite = TWeights.AllFinite32(w + i);
            a0 = Avx512F.FusedMultiplyAdd(Load16(w + i, finite), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Load16(w + i + 16, finite), Vector512.Load(x + i + 16), a1);
        }
        for (; i + 16 <= k; i += 16) a0 = Avx512F.FusedMultiplyAdd(TWeights.Load16(w + i), Vector512.Load(x + i), a0);
        var sum = Vector512.Sum(a0 + a1);
        for (; i < k; i++) sum += TWeights.ToSingle(w[i]) * x[i];
        return sum;
    }

    // A run of 32 weights widened by the format's shorter steps where it vouched for them (IHalfWeights.AllFinite32).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load8(ushort* w, bool finite) => finite ? TWeights.LoadFinite8(w) : TWeights.Load8(w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load16(ushort* w, bool finite) => finite ? TWeights.LoadFinite16(w) : TWeights.Load16(w);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Widen(ushort* w, float* target, int count, KernelPath path)
    {
        var i = 0;
        if (path == KernelPath.Avx512)
        {
            for (; i + 16 <= count; i += 16) TWeights.Load16(w + i).Store(target + i);
        }
        for (; i + 8 <= count; i += 8) TWeights.Load8(w + i).Store(target + i);
        for (; i < count; i++) target[i] = TWeights.ToSingle(w[i]);
    }

    private static void Portable(float* x, ushort* w, float* y, int rows, int k, int yStride, int first, int end)
    {
        for (var row = 0; row < rows; row++)
        {
            var xr = x + (long)row * k;
            for (var j = first; j < end; j++)
            {
                var wj = w + (long)j * k;
                var sum = 0f;
                for (var i = 0; i < k; i++) sum += TWeights.ToSingle(wj[i]) * xr[i];
                y[(long)row * yStride + j] = sum;
            }
        }
    }
}
