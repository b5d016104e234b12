using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// Several-row products through float32 panels: four weight rows dequantized once to float32 (d·q, d·q + m
/// for int4), then every float input row through <see cref="FloatPanelTile"/>. The activations stay
/// float32, so no activation quantization error; the integer products keep theirs. Measured (docs/weights.md)
/// against the four-row integer products: int8 from 32 rows faster this way, as its integer work
/// per block (a conversion, a scale shuffle and an FMA per row) costs about what the float tile does and
/// the panels skip it; int4 and int4_sym not. The integer panels (QuantizedMath.IntegerPanels.cs) beat both,
/// so int8 takes float panels only on a machine with neither VNNI nor AVX-512, where the integer panels cannot take it.
/// </summary>
public static unsafe partial class QuantizedMath
{
    /// <summary>Fewest input rows for which an int8 product goes through float panels: below it the dequantization is not repaid.</summary>
    public const int Int8PanelMinRows = 32;

    /// <summary>Whether the kernel computes this product with <see cref="MultiplyPanels"/> (float x) rather than <see cref="Multiply"/> (quantized x).</summary>
    public static bool UsesPanels(QuantizedPath path, QuantScheme scheme, int rows) =>
        path != QuantizedPath.Portable && scheme == QuantScheme.Int8 && rows >= Int8PanelMinRows && !UsesIntegerPanels(path, scheme, rows);

    /// <summary>The float tile's path for the panels: 512-bit where the machine has AVX-512F.</summary>
    public static KernelPath PanelTile => KernelPaths.Best;

    /// <summary>
    /// y[r, first..end) for every row r of float x [rows, k] and W's packed rows <paramref name="w"/>, y's rows
    /// <paramref name="n"/> apart, the tile on <paramref name="tile"/> (<see cref="KernelPath.Avx2"/> or <see cref="KernelPath.Avx512"/>).
    /// </summary>
    public static void MultiplyPanels(KernelPath tile, QuantScheme scheme, float* x, byte* w, float* y, int rows, int k, int n, int first, int end)
    {
        if (tile == KernelPath.Portable || !KernelPaths.IsSupported(tile)) throw new PlatformNotSupportedException($"no float tile on the {tile} path here");
        var blocks = (int)QuantSchemes.Blocks(k);
        var rowBytes = (long)blocks * scheme.BlockBytes();
        // Whole blocks per panel row (a multiple of 16 floats); the tile reads the first k.
        var stride = (long)blocks * QuantSchemes.BlockSize;
        var panelFloats = FloatPanelTile.Columns * stride;
        var panel = (float*)NativeMemory.AlignedAlloc((nuint)((panelFloats + FloatPanelTile.ScratchFloats(rows)) * sizeof(float)), 64);
        try
        {
            new Span<float>(panel, (int)panelFloats).Clear();
            for (var j0 = first; j0 < end; j0 += FloatPanelTile.Columns)
            {
                var columns = Math.Min(FloatPanelTile.Columns, end - j0);
                for (var c = 0; c < columns; c++) DequantizeRow(scheme, w + (j0 + c) * rowBytes, blocks, panel + c * stride);
                FloatPanelTile.Multiply(x, panel, stride, y + j0, rows, k, n, columns, panel + panelFloats, tile);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(panel);
        }
    }

    // The 32 · blocks weights of one packed row, exactly as BlockQuantizer.DequantizeRow gives them (d·q rounded, then + m rounded: no FMA).
    private static void DequantizeRow(QuantScheme scheme, byte* w, int blocks, float* target)
    {
        if (scheme == QuantScheme.Int8) DequantizeInt8(w, blocks, target);
        else if (scheme == QuantScheme.Int4Sym) DequantizeInt4Sym(w, blocks, target);
        else DequantizeInt4(w, blocks, target);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DequantizeInt8(byte* w, int blocks, float* target)
    {
        const int bytes = 2 + QuantSchemes.BlockSize;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var to = target + b * 32L;
            var d = Vector256.Create(Scale(block));
            var q = (sbyte*)block + 2;
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q))).Store(to);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 8))).Store(to + 8);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 16))).Store(to + 16);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 24))).Store(to + 24);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DequantizeInt4Sym(byte* w, int blocks, float* target)
    {
        const int bytes = 2 + QuantSchemes.BlockSize / 2;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var to = target + b * 32L;
            var d = Vector256.Create(Scale(block));
            // Values 0..15 in the low half, 16..31 in the high half, each q − 8.
            var q = Unpack(block + 2);
            var low = q.GetLower();
            var high = q.GetUpper();
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(low))).Store(to);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(low, 8)))).Store(to + 8);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(high))).Store(to + 16);
            Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(high, 8)))).Store(to + 24);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DequantizeInt4(byte* w, int blocks, float* target)
    {
        const int bytes = 4 + QuantSchemes.BlockSize / 2;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * bytes;
            var to = target + b * 32L;
            var d = Vector256.Create(Scale(block));
            var m = Vector256.Create(Scale(block + 2));
            var q = UnpackUnsigned(block + 4);
            var low = q.GetLower();
            var high = q.GetUpper();
            Avx.Add(Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(low))), m).Store(to);
            Avx.Add(Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(low, 8)))), m).Store(to + 8);
            Avx.Add(Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(high))), m).Store(to + 16);
            Avx.Add(Avx.Multiply(d, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(high, 8)))), m).Store(to + 24);
        }
    }
}
