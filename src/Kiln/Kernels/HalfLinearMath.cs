using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Kernels;

/// <summary>
/// <see cref="LinearMath"/>'s product over a weight stored as 16-bit floats (bf16 or f16,
/// <typeparamref name="TWeights"/>): x and y stay float32 and so does every sum; only the weight is read
/// as stored, half the bytes of float32. One-row products convert each weight vector in registers as
/// the row streams by (a single stream, one weight row after the other, as LinearMath's; f16 in its placed form
/// against x scaled once per call, <see cref="IHalfWeights.PlacedExponent"/>); products of several
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
        if (rows == 1)
        {
            OneRow(x, w, y, k, first, end, path == KernelPath.Avx512 && k >= Wide512MinimumK);
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

    // Whether those prefetches are made at all (CpuTuning): a constant once the loops are compiled at tier 1.
    private static readonly bool Prefetches = CpuTuning.HalfPrefetches;

    // The shortest row a one-row product on the AVX-512 path reads with 512-bit vectors (the format's choice, CpuTuning);
    // shorter rows take the 256-bit loop.
    private static readonly int Wide512MinimumK = TWeights.Wide512MinimumK;

    // y[first..end) for one input row: each weight row in the format's placed form (IHalfWeights.PlacedExponent)
    // against x times 2^PlacedExponent, 32 weights a step, then the row's tail with the full steps against x itself.
    // Should x hold a magnitude the full multiply would overflow, it takes a smaller power of two and the sum the
    // rest, which changes no product above float32's subnormal range; x holding an infinity or NaN, or a weight row
    // holding a special pattern, is read with the full steps.
    private static void OneRow(float* x, ushort* w, float* y, int k, int first, int end, bool wide)
    {
        var whole = k & ~31;
        var placedX = x;
        var rescale = 1f;
        if (TWeights.PlacedExponent != 0)
        {
            var exponent = InputExponent(x, k);
            if (exponent < 0)
            {
                for (var j = first; j < end; j++) y[j] = FullSteps(w + (long)j * k, x, 0, k);
                return;
            }
            placedX = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(whole, 1) * sizeof(float), 64);
            Scale(x, placedX, whole, MathF.ScaleB(1f, exponent));
            rescale = MathF.ScaleB(1f, TWeights.PlacedExponent - exponent);
        }
        try
        {
            for (var j = first; j < end; j++)
            {
                var wj = w + (long)j * k;
                var sum = wide ? Dot512(wj, placedX, whole, out var special) : Dot(wj, placedX, whole, out special);
                y[j] = special ? FullSteps(wj, x, 0, k) : sum * rescale + FullSteps(wj, x, whole, k);
            }
        }
        finally
        {
            if (placedX != x) NativeMemory.AlignedFree(placedX);
        }
    }

    // The power of two x is multiplied by for the placed weights: 2^PlacedExponent where that keeps every |x| below
    // 2^127 (float32's largest power of two), less where x holds larger magnitudes, -1 where it holds an infinity or NaN.
    private static int InputExponent(float* x, int k)
    {
        // The bits of |x| order as the magnitudes do, infinity and NaN above every finite value.
        var magnitudes = Vector256<int>.Zero;
        var i = 0;
        for (; i + 8 <= k; i += 8) magnitudes = Vector256.Max(magnitudes, Vector256.Load((int*)x + i) & Vector256.Create(int.MaxValue));
        var largest = 0;
        for (var lane = 0; lane < Vector256<int>.Count; lane++) largest = Math.Max(largest, magnitudes[lane]);
        for (; i < k; i++) largest = Math.Max(largest, BitConverter.SingleToInt32Bits(x[i]) & int.MaxValue);
        var biased = largest >> 23;
        // |x| < 2^(biased - 126), so |x|·2^e < 2^127 for e <= 253 - biased.
        return biased == 255 ? -1 : Math.Min(TWeights.PlacedExponent, 253 - biased);
    }

    private static void Scale(float* x, float* target, int count, float factor)
    {
        var i = 0;
        for (; i + 8 <= count; i += 8) (Vector256.Load(x + i) * factor).Store(target + i);
        for (; i < count; i++) target[i] = x[i] * factor;
    }

    // The sum over weights first..k of one row with the full steps: the tail after the placed loops, or a whole
    // row they cannot read.
    private static float FullSteps(ushort* w, float* x, int first, int k)
    {
        var i = first;
        var a = Vector256<float>.Zero;
        for (; i + 8 <= k; i += 8) a = Fma.MultiplyAdd(TWeights.Load8(w + i), Vector256.Load(x + i), a);
        var sum = Vector256.Sum(a);
        for (; i < k; i++) sum += TWeights.ToSingle(w[i]) * x[i];
        return sum;
    }

    // One weight row's first `whole` weights (a multiple of 32) in the placed form, four independent accumulators:
    // consecutive calls read W as one sequential stream. `special`: the row holds a pattern the placed form misreads.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(ushort* w, float* x, int whole, out bool special)
    {
        // Read once per row: a generic class's static field in the loop would be looked up at every step in Native AOT.
        var prefetches = Prefetches;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var largest = Vector256<ushort>.Zero;
        for (var i = 0; i < whole; i += 32)
        {
            if (prefetches) Sse.Prefetch0(w + i + PrefetchAhead);
            if (TWeights.HasSpecials)
            {
                largest = Vector256.Max(largest, Vector256.Load(w + i) & Vector256.Create((ushort)0x7FFF));
                largest = Vector256.Max(largest, Vector256.Load(w + i + 16) & Vector256.Create((ushort)0x7FFF));
            }
            a0 = Fma.MultiplyAdd(TWeights.LoadPlaced8(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(TWeights.LoadPlaced8(w + i + 8), Vector256.Load(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(TWeights.LoadPlaced8(w + i + 16), Vector256.Load(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(TWeights.LoadPlaced8(w + i + 24), Vector256.Load(x + i + 24), a3);
        }
        special = TWeights.HasSpecials && Vector256.GreaterThanOrEqualAny(largest, Vector256.Create(TWeights.SpecialMagnitude));
        return Vector256.Sum((a0 + a1) + (a2 + a3));
    }

    // Dot with 512-bit vectors: half the instructions per weight.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot512(ushort* w, float* x, int whole, out bool special)
    {
        var prefetches = Prefetches;
        Vector512<float> a0 = default, a1 = default;
        var largest = Vector512<ushort>.Zero;
        for (var i = 0; i < whole; i += 32)
        {
            if (prefetches) Sse.Prefetch0(w + i + PrefetchAhead);
            if (TWeights.HasSpecials) largest = Vector512.Max(largest, Vector512.Load(w + i) & Vector512.Create((ushort)0x7FFF));
            a0 = Avx512F.FusedMultiplyAdd(TWeights.LoadPlaced16(w + i), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(TWeights.LoadPlaced16(w + i + 16), Vector512.Load(x + i + 16), a1);
        }
        special = TWeights.HasSpecials && Vector512.GreaterThanOrEqualAny(largest, Vector512.Create(TWeights.SpecialMagnitude));
        return Vector512.Sum(a0 + a1);
    }

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
