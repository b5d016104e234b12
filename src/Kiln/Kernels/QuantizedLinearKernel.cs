using System.Runtime.InteropServices;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// The ONNX Runtime custom ops <c>ai.kiln.LinearInt8</c>, <c>ai.kiln.LinearInt4</c> and <c>ai.kiln.LinearInt4Sym</c>
/// (one instance per scheme): Y = X·Wᵀ for float32 X [..., k] and W u8 [n, RowBytes(k)], a weight packed by the quantize
/// recipe step (<see cref="BlockQuantizer"/>); Y [..., n]. X is quantized once per product, then output
/// columns are split over the session's intra-op threads as <see cref="LinearKernel"/> splits them
/// (<see cref="QuantizedMath"/> on the best instruction set the machine has; several-row products through integer
/// panels, <see cref="QuantizedMath.UsesIntegerPanels"/>); int8 products of many rows on a machine with neither VNNI
/// nor AVX-512 instead keep X float and dequantize weight panels (<see cref="QuantizedMath.UsesPanels"/>).
/// </summary>
public sealed unsafe class QuantizedLinearKernel : CustomOpKernel
{
    /// <summary>ONNXTensorElementDataType UINT8.</summary>
    private const int ElementUInt8 = 2;

    private const int MaxRank = 8;

    private readonly int _parts;
    private readonly QuantScheme _scheme;

    /// <param name="threads">The session's intra-op threads: each product is split into this many parts.</param>
    public QuantizedLinearKernel(int threads, QuantScheme scheme) : base(OpType(scheme), [OrtNative.ElementFloat, ElementUInt8])
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _parts = threads;
        _scheme = scheme;
    }

    /// <summary>The op type of a scheme's product in domain <see cref="LinearKernel.Domain"/>: "LinearInt8", "LinearInt4", "LinearInt4Sym".</summary>
    public static string OpType(QuantScheme scheme) => scheme switch
    {
        QuantScheme.Int8 => "LinearInt8",
        QuantScheme.Int4Sym => "LinearInt4Sym",
        QuantScheme.Int4 => "LinearInt4",
        _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, null),
    };

    protected override nint Run(nint context)
    {
        Span<long> xShape = stackalloc long[MaxRank];
        Span<long> wShape = stackalloc long[MaxRank];
        var x = OrtNative.KernelInput(context, 0);
        var w = OrtNative.KernelInput(context, 1);
        var xRank = OrtNative.TensorShape(x, xShape, out _);
        var wRank = OrtNative.TensorShape(w, wShape, out _);
        if (xRank < 1) return Invalid("X must have rank >= 1");
        var k = xShape[xRank - 1];
        if (wRank != 2 || wShape[1] != _scheme.RowBytes(k))
            return Invalid($"W must be [n, {_scheme.RowBytes(k)}] (k = {k} in blocks of {QuantSchemes.BlockSize}, {_scheme.BlockBytes()} bytes each); got [{string.Join(", ", wShape[..wRank].ToArray())}]");
        var n = wShape[0];
        long rows = 1;
        for (var i = 0; i < xRank - 1; i++) rows *= xShape[i];
        if (rows > int.MaxValue || n > int.MaxValue || k > int.MaxValue || rows * QuantSchemes.Blocks(k) * QuantSchemes.BlockSize > int.MaxValue)
            return Invalid("dimensions beyond 2^31 are not supported");
        Span<long> yShape = stackalloc long[xRank];
        xShape[..xRank].CopyTo(yShape);
        yShape[^1] = n;
        var y = OrtNative.KernelOutput(context, 0, yShape);
        if (rows == 0 || n == 0) return 0;

        var product = new Product
        {
            Scheme = _scheme, X = (float*)OrtNative.TensorData(x), W = (byte*)OrtNative.TensorData(w), Y = (float*)OrtNative.TensorData(y),
            Rows = (int)rows, N = (int)n, K = (int)k,
            Parts = rows * n * k < LinearKernel.ParallelMinimumWork ? 1 : _parts,
            Panels = QuantizedMath.UsesPanels(QuantizedMath.Best, _scheme, (int)rows),
        };
        if (product.Panels)
        {
            Run(context, &product);
            return 0;
        }
        var blocks = QuantSchemes.Blocks(k);
        product.Qx = (sbyte*)NativeMemory.AlignedAlloc((nuint)(rows * blocks * QuantSchemes.BlockSize), 64);
        product.Dx = (float*)NativeMemory.AlignedAlloc((nuint)(2 * rows * blocks * sizeof(float)), 64);
        product.Sx = product.Dx + rows * blocks;
        try
        {
            QuantizedMath.QuantizeActivations(product.X, (int)rows, (int)k, product.Qx, product.Dx, product.Sx);
            Run(context, &product);
        }
        finally
        {
            NativeMemory.AlignedFree(product.Qx);
            NativeMemory.AlignedFree(product.Dx);
        }
        return 0;
    }

    private static void Run(nint context, Product* product)
    {
        if (product->Parts == 1) product->Compute(0, product->N);
        else KernelWorkers.Run(context, product->Parts, &RunPart, product);
    }

    // Panels: float X through dequantized weight panels; else X quantized to Qx, Dx, Sx.
    private struct Product
    {
        public QuantScheme Scheme;
        public bool Panels;
        public float* X;
        public sbyte* Qx;
        public float* Dx, Sx, Y;
        public byte* W;
        public int Rows, N, K, Parts;

        public readonly void Compute(int first, int end)
        {
            if (Panels) QuantizedMath.MultiplyPanels(QuantizedMath.PanelTile, Scheme, X, W, Y, Rows, K, N, first, end);
            else QuantizedMath.Multiply(QuantizedMath.Best, Scheme, Qx, Dx, Sx, W, Y, Rows, K, N, first, end);
        }
    }

    // Part i computes an even share of the output columns, rounded to whole integer panels (a multiple of the tile height).
    private static void RunPart(void* state, int i)
    {
        var p = (Product*)state;
        const int align = ~(QuantizedMath.PanelColumns - 1);
        var first = (int)((long)p->N * i / p->Parts) & align;
        var end = i == p->Parts - 1 ? p->N : (int)((long)p->N * (i + 1) / p->Parts) & align;
        p->Compute(first, end);
    }
}
