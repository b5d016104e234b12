using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// The ONNX Runtime custom op <c>ai.kiln.Linear</c>: Y = X·Wᵀ for float32 X [..., k] and W [n, k]
/// (a Linear weight as the checkpoint stores it, used in place: float32, float16 or bfloat16, summed in
/// float32), Y [..., n] float32. W may come in several pieces W1 [n1, k], W2 [n2, k], ... of one element
/// type (variadic last input): Y is then X·[W1; W2; ...]ᵀ, so fused projections read the checkpoint's own
/// tensors and need no concatenated copy. Output columns are split into as many parts as the session has intra-op
/// threads, run on <see cref="KernelWorkers"/> (ORT's pool when those are busy), and each thread streams its own
/// contiguous part of W (<see cref="LinearMath"/>, <see cref="HalfLinearMath{TWeights}"/>). A single W may
/// instead come in column blocks, [parts, n, k / parts] (<see cref="Weights.SplitColumnsStep"/>): each part
/// then computes its columns block by block over the matching stretch of X and sums the blocks in order,
/// so a row's result is the same whatever the number of rows or parts (LinearMath's batch invariance). Why not
/// ORT's MatMul: for the one-row products of decoding, MLAS draws well below the machine's read
/// bandwidth (docs/performance.md), and it has no float32 product over 16-bit weights.
/// </summary>
public sealed unsafe class LinearKernel : CustomOpKernel
{
    public const string OpType = "Linear";

    /// <summary>Below this many multiply-adds a product runs on the calling thread: waking workers would cost more.</summary>
    public const long ParallelMinimumWork = 1 << 18;

    private const int MaxRank = 8;

    /// <summary>Most weight pieces one node may have.</summary>
    public const int MaxWeights = 8;

    private readonly int _parts;

    /// <param name="threads">The session's intra-op threads: each product is split into this many parts.</param>
    public LinearKernel(int threads) : base(OpType, [OrtNative.ElementFloat, OrtNative.ElementUndefined], lastInputVariadic: true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _parts = threads;
    }

    protected override nint Run(nint context)
    {
        Span<long> xShape = stackalloc long[MaxRank];
        Span<long> wShape = stackalloc long[MaxRank];
        var x = OrtNative.KernelInput(context, 0);
        var xRank = OrtNative.TensorShape(x, xShape, out _);
        var weights = OrtNative.KernelInputCount(context) - 1;
        if (xRank < 1 || weights < 1 || weights > MaxWeights)
            return Invalid($"X must have rank >= 1 and 1 to {MaxWeights} weights follow it; got rank {xRank} and {weights} weights");
        var k = xShape[xRank - 1];
        var product = new Product { Weights = weights, Blocks = 1 };
        long n = 0;
        for (var i = 0; i < weights; i++)
        {
            var w = OrtNative.KernelInput(context, i + 1);
            var wRank = OrtNative.TensorShape(w, wShape, out var type);
            if (i == 0) product.Format = type;
            else if (type != product.Format)
                return Invalid($"every W must have one element type; W1 is {OrtNative.ElementTypeName(product.Format)}, W{i + 1} is {OrtNative.ElementTypeName(type)}");
            if (weights == 1 && wRank == 3 && wShape[0] >= 1 && wShape[0] * wShape[2] == k)
            {
                product.Blocks = (int)wShape[0];
                wShape[0] = wShape[1];
            }
            else if (wRank != 2 || wShape[1] != k)
                return Invalid($"each W must be [n, k] (or one W [parts, n, k / parts]) with k = the last dimension of X; got X [{string.Join(", ", xShape[..xRank].ToArray())}], W{i + 1} [{string.Join(", ", wShape[..wRank].ToArray())}]");
            product.W[i] = (long)OrtNative.TensorData(w);
            product.Offsets[i] = (int)n;
            n += wShape[0];
        }
        if (product.Format is not (OrtNative.ElementFloat or OrtNative.ElementFloat16 or OrtNative.ElementBFloat16))
            return Invalid($"W must be float, float16 or bfloat16; got {OrtNative.ElementTypeName(product.Format)}");
        long rows = 1;
        for (var i = 0; i < xRank - 1; i++) rows *= xShape[i];
        if (rows > int.MaxValue || n > int.MaxValue || k > int.MaxValue) return Invalid("dimensions beyond 2^31 are not supported");
        product.Offsets[weights] = (int)n;
        Span<long> yShape = stackalloc long[xRank];
        xShape[..xRank].CopyTo(yShape);
        yShape[^1] = n;
        var y = OrtNative.KernelOutput(context, 0, yShape);
        if (rows == 0 || n == 0) return 0;
        product.X = (float*)OrtNative.TensorData(x);
        product.Y = (float*)OrtNative.TensorData(y);
        product.Rows = (int)rows;
        product.N = (int)n;
        product.K = (int)k;
        product.Parts = rows * n * k < ParallelMinimumWork ? 1 : _parts;
        if (product.Blocks == 1)
        {
            Compute(context, &product);
            return 0;
        }
        // Column blocks: X's stretch for each block gathered into rows of their own (one row needs none),
        // and room for the blocks after the first, which are added to Y.
        var gathered = rows == 1 ? null : (float*)NativeMemory.Alloc((nuint)(rows * k), sizeof(float));
        product.BlockSums = (float*)NativeMemory.Alloc((nuint)(rows * n), sizeof(float));
        try
        {
            if (gathered != null) product.X = GatherBlocks(product.X, gathered, product.Rows, product.K, product.Blocks);
            Compute(context, &product);
        }
        finally
        {
            NativeMemory.Free(gathered);
            NativeMemory.Free(product.BlockSums);
        }
        return 0;
    }

    private static void Compute(nint context, Product* product)
    {
        if (product->Parts == 1) product->Compute(0, product->N);
        else KernelWorkers.Run(context, product->Parts, &RunPart, product);
    }

    // X [rows, k] as [blocks, rows, k / blocks]: block b's stretch of every row, rows in order.
    private static float* GatherBlocks(float* x, float* gathered, int rows, int k, int blocks)
    {
        var width = k / blocks;
        for (var b = 0; b < blocks; b++)
        {
            for (var r = 0; r < rows; r++)
                new ReadOnlySpan<float>(x + (long)r * k + (long)b * width, width).CopyTo(new Span<float>(gathered + ((long)b * rows + r) * width, width));
        }
        return gathered;
    }

    // One product, as the parallel parts see it: weight piece i holds output columns Offsets[i]..Offsets[i + 1),
    // every piece of element type Format. With Blocks > 1 the one piece is [Blocks, N, K / Blocks] and X, for
    // several rows, is gathered as [Blocks, Rows, K / Blocks]; BlockSums [Rows, N] takes each later block's product.
    private struct Product
    {
        public float* X, Y, BlockSums;
        public int Rows, N, K, Parts, Weights, Format, Blocks;
        public fixed long W[MaxWeights];
        public fixed int Offsets[MaxWeights + 1];

        // Output columns first..end, piece by piece, or block by block.
        public void Compute(int first, int end)
        {
            if (Blocks > 1)
            {
                ComputeBlocks(first, end);
                return;
            }
            for (var i = 0; i < Weights; i++)
            {
                var (from, to) = (Math.Max(first, Offsets[i]), Math.Min(end, Offsets[i + 1]));
                if (from >= to) continue;
                Multiply(X, W[i], Y + Offsets[i], K, from - Offsets[i], to - Offsets[i]);
            }
        }

        // Each block in turn over its stretch of X, read in order; blocks after the first are added to Y.
        private void ComputeBlocks(int first, int end)
        {
            var width = K / Blocks;
            var elementBytes = Format == OrtNative.ElementFloat ? sizeof(float) : sizeof(ushort);
            for (var b = 0; b < Blocks; b++)
            {
                var x = X + (long)b * (Rows == 1 ? width : Rows * (long)width);
                var w = W[0] + (long)b * N * width * elementBytes;
                Multiply(x, w, b == 0 ? Y : BlockSums, width, first, end);
                if (b == 0) continue;
                for (var r = 0; r < Rows; r++)
                {
                    var y = Y + (long)r * N;
                    var sums = BlockSums + (long)r * N;
                    for (var j = first; j < end; j++) y[j] += sums[j];
                }
            }
        }

        // y[:, from..to) = x·wᵀ for x [Rows, k] and w [.., k] of element type Format; rows of y N apart.
        private readonly void Multiply(float* x, long w, float* y, int k, int from, int to)
        {
            switch (Format)
            {
                case OrtNative.ElementFloat16:
                    HalfLinearMath<HalfWeights>.Multiply(x, (ushort*)w, y, Rows, k, N, from, to, KernelPaths.Best);
                    break;
                case OrtNative.ElementBFloat16:
                    HalfLinearMath<BFloat16Weights>.Multiply(x, (ushort*)w, y, Rows, k, N, from, to, KernelPaths.Best);
                    break;
                default:
                    LinearMath.Multiply(x, (float*)w, y, Rows, k, N, from, to);
                    break;
            }
        }
    }

    // Part i computes an even share of the output columns, rounded to fours (LinearMath's tile width).
    private static void RunPart(void* state, int i)
    {
        var p = (Product*)state;
        var first = (int)((long)p->N * i / p->Parts) & ~3;
        var end = i == p->Parts - 1 ? p->N : (int)((long)p->N * (i + 1) / p->Parts) & ~3;
        p->Compute(first, end);
    }
}
