using Kiln.Distributed;

namespace Kiln.Kernels;

/// <summary>
/// The ONNX Runtime custom op <c>ai.kiln.AllReduce</c>: Y = the element-wise sum of X over every rank
/// of the session's world (after a row-parallel projection each rank holds a partial sum). Every rank
/// runs the same graph in the same order, so the ranks meet at each node in turn.
/// </summary>
public sealed unsafe class AllReduceKernel(ICommunicator world) : CustomOpKernel(OpType, [OrtNative.ElementFloat])
{
    public const string OpType = "AllReduce";

    private const int MaxRank = 8;

    private long _ticks;

    /// <summary>Time spent in the all-reduces so far (waiting for the other ranks included), in milliseconds.</summary>
    public double ElapsedMs => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _ticks)).TotalMilliseconds;

    protected override nint Run(nint context)
    {
        Span<long> shape = stackalloc long[MaxRank];
        var x = OrtNative.KernelInput(context, 0);
        var rank = OrtNative.TensorShape(x, shape, out _);
        long count = 1;
        for (var i = 0; i < rank; i++) count *= shape[i];
        if (count > int.MaxValue) return Invalid("more than 2^31 elements");
        var y = OrtNative.KernelOutput(context, 0, shape[..rank]);
        var values = new Span<float>(OrtNative.TensorData(y), (int)count);
        new ReadOnlySpan<float>(OrtNative.TensorData(x), (int)count).CopyTo(values);
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        world.AllReduceSum(values);
        Interlocked.Add(ref _ticks, System.Diagnostics.Stopwatch.GetTimestamp() - start);
        return 0;
    }
}
