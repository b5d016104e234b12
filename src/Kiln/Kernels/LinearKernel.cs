using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// The ONNX Runtime custom op <c>ai.kiln.Linear</c>: Y = X·Wᵀ for float32 X [..., k] and W [n, k]
/// (a Linear weight as the checkpoint stores it, used in place: float32, float16 or bfloat16, summed in
/// float32), Y [..., n] float32. W may come in several pieces W1 [n1, k], W2 [n2, k], ... of one element
/// type (variadic last input): Y is then X·[W1; W2; ...]ᵀ, so fused projections read the checkpoint's own
/// tensors and need no concatenated copy. Output columns are split over the session's intra-op threads
/// (ORT's own pool, so its thread count and spinning settings hold), and each thread streams its own
/// contiguous part of W (<see cref="LinearMath"/>, <see cref="HalfLinearMath{TWeights}"/>). Why not
/// ORT's MatMul: for the one-row products of decoding, MLAS draws well below the machine's read
/// bandwidth (docs/performance.md), and it has no float32 product over 16-bit weights.
/// </summary>
public sealed unsafe class LinearKernel : IDisposable
{
    public const string Domain = "ai.kiln";
    public const string OpType = "Linear";

    /// <summary>Below this many multiply-adds a product runs on the calling thread: waking workers would cost more.</summary>
    public const long ParallelMinimumWork = 1 << 18;

    private const int MaxRank = 8;

    /// <summary>Most weight pieces one node may have.</summary>
    public const int MaxWeights = 8;

    // OrtCustomOpInputOutputCharacteristic values.
    private const int RequiredInput = 0, VariadicInput = 2;
    private static readonly nint Name = Marshal.StringToCoTaskMemUTF8(OpType);

    private readonly int _parts;
    private GCHandle _self;

    /// <param name="threads">The session's intra-op threads: each product is split into this many parts.</param>
    public LinearKernel(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _parts = threads;
        _self = GCHandle.Alloc(this);
        Op = (NativeCustomOp*)NativeMemory.AllocZeroed((nuint)sizeof(NativeCustomOp));
        *Op = new NativeCustomOp
        {
            Version = OrtNative.CustomOpVersion,
            GetName = (nint)(delegate* unmanaged<nint, nint>)&GetNameCallback,
            GetExecutionProviderType = (nint)(delegate* unmanaged<nint, nint>)&CpuProvider,
            GetInputType = (nint)(delegate* unmanaged<nint, nuint, int>)&InputType,
            GetInputTypeCount = (nint)(delegate* unmanaged<nint, nuint>)&InputCount,
            GetOutputType = (nint)(delegate* unmanaged<nint, nuint, int>)&FloatType,
            GetOutputTypeCount = (nint)(delegate* unmanaged<nint, nuint>)&OutputCount,
            KernelDestroy = (nint)(delegate* unmanaged<nint, void>)&DestroyKernel,
            GetInputCharacteristic = (nint)(delegate* unmanaged<nint, nuint, int>)&InputCharacteristic,
            GetOutputCharacteristic = (nint)(delegate* unmanaged<nint, nuint, int>)&Required,
            GetInputMemoryType = (nint)(delegate* unmanaged<nint, nuint, int>)&DefaultMemory,
            GetVariadicInputMinArity = (nint)(delegate* unmanaged<nint, int>)&One,
            GetVariadicInputHomogeneity = (nint)(delegate* unmanaged<nint, int>)&Zero,
            GetVariadicOutputMinArity = (nint)(delegate* unmanaged<nint, int>)&One,
            GetVariadicOutputHomogeneity = (nint)(delegate* unmanaged<nint, int>)&One,
            CreateKernelV2 = (nint)(delegate* unmanaged<nint, nint, nint, nint*, nint>)&CreateKernel,
            KernelComputeV2 = (nint)(delegate* unmanaged<nint, nint, nint>)&Compute,
            Owner = GCHandle.ToIntPtr(_self),
        };
    }

    /// <summary>The native op ORT holds; valid until <see cref="Dispose"/>.</summary>
    internal NativeCustomOp* Op { get; private set; }

    public void Dispose()
    {
        if (Op == null) return;
        NativeMemory.Free(Op);
        Op = null;
        _self.Free();
    }

    private nint Run(nint context)
    {
        Span<long> xShape = stackalloc long[MaxRank];
        Span<long> wShape = stackalloc long[MaxRank];
        var x = OrtNative.KernelInput(context, 0);
        var xRank = OrtNative.TensorShape(x, xShape, out _);
        var weights = OrtNative.KernelInputCount(context) - 1;
        if (xRank < 1 || weights < 1 || weights > MaxWeights)
            return Invalid($"X must have rank >= 1 and 1 to {MaxWeights} weights follow it; got rank {xRank} and {weights} weights");
        var k = xShape[xRank - 1];
        var product = new Product { Weights = weights };
        long n = 0;
        for (var i = 0; i < weights; i++)
        {
            var w = OrtNative.KernelInput(context, i + 1);
            var wRank = OrtNative.TensorShape(w, wShape, out var type);
            if (i == 0) product.Format = type;
            else if (type != product.Format)
                return Invalid($"every W must have one element type; W1 is {OrtNative.ElementTypeName(product.Format)}, W{i + 1} is {OrtNative.ElementTypeName(type)}");
            if (wRank != 2 || wShape[1] != k)
                return Invalid($"each W must be [n, k] with k = the last dimension of X; got X [{string.Join(", ", xShape[..xRank].ToArray())}], W{i + 1} [{string.Join(", ", wShape[..wRank].ToArray())}]");
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
        if (product.Parts == 1) product.Compute(0, product.N);
        else OrtNative.ParallelFor(context, &RunPart, product.Parts, &product);
        return 0;
    }

    private static nint Invalid(string message) => OrtNative.CreateStatus(OrtNative.InvalidArgument, $"{Domain}.{OpType}: {message}");

    // One product, as the parallel parts see it: weight piece i holds output columns Offsets[i]..Offsets[i + 1),
    // every piece of element type Format.
    private struct Product
    {
        public float* X, Y;
        public int Rows, N, K, Parts, Weights, Format;
        public fixed long W[MaxWeights];
        public fixed int Offsets[MaxWeights + 1];

        // Output columns first..end, piece by piece.
        public void Compute(int first, int end)
        {
            for (var i = 0; i < Weights; i++)
            {
                var (from, to) = (Math.Max(first, Offsets[i]), Math.Min(end, Offsets[i + 1]));
                if (from >= to) continue;
                var w = W[i];
                var y = Y + Offsets[i];
                switch (Format)
                {
                    case OrtNative.ElementFloat16:
                        HalfLinearMath<HalfWeights>.Multiply(X, (ushort*)w, y, Rows, K, N, from - Offsets[i], to - Offsets[i], KernelPaths.Best);
                        break;
                    case OrtNative.ElementBFloat16:
                        HalfLinearMath<BFloat16Weights>.Multiply(X, (ushort*)w, y, Rows, K, N, from - Offsets[i], to - Offsets[i], KernelPaths.Best);
                        break;
                    default:
                        LinearMath.Multiply(X, (float*)w, y, Rows, K, N, from - Offsets[i], to - Offsets[i]);
                        break;
                }
            }
        }
    }

    // Part i computes an even share of the output columns, rounded to fours (LinearMath's tile width).
    [UnmanagedCallersOnly]
    private static void RunPart(void* state, nuint part)
    {
        var p = (Product*)state;
        var i = (int)part;
        var first = (int)((long)p->N * i / p->Parts) & ~3;
        var end = i == p->Parts - 1 ? p->N : (int)((long)p->N * (i + 1) / p->Parts) & ~3;
        p->Compute(first, end);
    }

    [UnmanagedCallersOnly]
    private static nint GetNameCallback(nint op) => Name;

    // Null names the CPU execution provider.
    [UnmanagedCallersOnly]
    private static nint CpuProvider(nint op) => 0;

    [UnmanagedCallersOnly]
    private static int FloatType(nint op, nuint index) => OrtNative.ElementFloat;

    // X is float32; the weights' type is checked at run time (any declared, so a wrong one gets this op's error).
    [UnmanagedCallersOnly]
    private static int InputType(nint op, nuint index) => index == 0 ? OrtNative.ElementFloat : OrtNative.ElementUndefined;

    [UnmanagedCallersOnly]
    private static nuint InputCount(nint op) => 2;

    [UnmanagedCallersOnly]
    private static nuint OutputCount(nint op) => 1;

    // X is required; the weights are one variadic input (the last one).
    [UnmanagedCallersOnly]
    private static int InputCharacteristic(nint op, nuint index) => index == 0 ? RequiredInput : VariadicInput;

    [UnmanagedCallersOnly]
    private static int Required(nint op, nuint index) => RequiredInput;

    // OrtMemTypeDefault: CPU memory of the kernel's provider.
    [UnmanagedCallersOnly]
    private static int DefaultMemory(nint op, nuint index) => 0;

    [UnmanagedCallersOnly]
    private static int One(nint op) => 1;

    // The weight pieces' types may differ as far as ORT is concerned: Run checks they agree.
    [UnmanagedCallersOnly]
    private static int Zero(nint op) => 0;

    // Every node of the op shares the op's state, so the kernel handle is the op's own GCHandle.
    [UnmanagedCallersOnly]
    private static nint CreateKernel(nint op, nint api, nint info, nint* kernel)
    {
        *kernel = ((NativeCustomOp*)op)->Owner;
        return 0;
    }

    [UnmanagedCallersOnly]
    private static void DestroyKernel(nint kernel)
    {
    }

    // No exception may cross into native code: failures become ORT statuses, which ORT reports as the run's error.
    [UnmanagedCallersOnly]
    private static nint Compute(nint kernel, nint context)
    {
        try
        {
            return ((LinearKernel)GCHandle.FromIntPtr(kernel).Target!).Run(context);
        }
        catch (Exception e)
        {
            return OrtNative.CreateStatus(OrtNative.Fail, $"{Domain}.{OpType}: {e.Message}");
        }
    }
}
