using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// One of Kiln's ONNX Runtime custom ops (domain <see cref="Domain"/>, CPU provider): the native
/// <see cref="NativeCustomOp"/> table ORT calls, whose callbacks find this object through the table's
/// trailing GCHandle. A subclass declares its inputs and outputs and computes in <see cref="Run"/>;
/// every node of the op shares the op's state.
/// </summary>
public abstract unsafe class CustomOpKernel : IDisposable
{
    public const string Domain = "ai.kiln";

    // OrtCustomOpInputOutputCharacteristic values.
    private const int RequiredInput = 0, VariadicInput = 2;

    private readonly int[] _inputTypes;
    private readonly int _outputCount;
    private readonly bool _lastInputVariadic;
    private readonly nint _name;
    private GCHandle _self;

    /// <param name="opType">The op's name in <see cref="Domain"/>.</param>
    /// <param name="inputTypes">ONNX element type of each input (<see cref="OrtNative.ElementUndefined"/>: checked by <see cref="Run"/>).</param>
    /// <param name="outputCount">Float32 outputs.</param>
    /// <param name="lastInputVariadic">The last input repeats (one or more tensors, types checked by <see cref="Run"/>).</param>
    protected CustomOpKernel(string opType, int[] inputTypes, int outputCount = 1, bool lastInputVariadic = false)
    {
        OpName = opType;
        _inputTypes = inputTypes;
        _outputCount = outputCount;
        _lastInputVariadic = lastInputVariadic;
        _name = Marshal.StringToCoTaskMemUTF8(opType);
        _self = GCHandle.Alloc(this);
        Op = (NativeCustomOp*)NativeMemory.AllocZeroed((nuint)sizeof(NativeCustomOp));
        *Op = new NativeCustomOp
        {
            Version = OrtNative.CustomOpVersion,
            GetName = (nint)(delegate* unmanaged<nint, nint>)&GetName,
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
            GetVariadicInputHomogeneity = (nint)(delegate* unmanaged<nint, int>)&Heterogeneous,
            GetVariadicOutputMinArity = (nint)(delegate* unmanaged<nint, int>)&One,
            GetVariadicOutputHomogeneity = (nint)(delegate* unmanaged<nint, int>)&One,
            CreateKernelV2 = (nint)(delegate* unmanaged<nint, nint, nint, nint*, nint>)&CreateKernel,
            KernelComputeV2 = (nint)(delegate* unmanaged<nint, nint, nint>)&Compute,
            Owner = GCHandle.ToIntPtr(_self),
        };
    }

    /// <summary>The op's name in <see cref="Domain"/>.</summary>
    public string OpName { get; }

    /// <summary>The native op ORT holds; valid until <see cref="Dispose"/>.</summary>
    internal NativeCustomOp* Op { get; private set; }

    /// <summary>Computes one node's outputs from its inputs; returns 0 or an ORT status.</summary>
    protected abstract nint Run(nint context);

    /// <summary>An invalid-argument status naming this op.</summary>
    protected nint Invalid(string message) => OrtNative.CreateStatus(OrtNative.InvalidArgument, $"{Domain}.{OpName}: {message}");

    public void Dispose()
    {
        if (Op == null) return;
        NativeMemory.Free(Op);
        Op = null;
        Marshal.FreeCoTaskMem(_name);
        _self.Free();
        GC.SuppressFinalize(this);
    }

    private static CustomOpKernel Of(nint handle) => (CustomOpKernel)GCHandle.FromIntPtr(handle).Target!;

    private static CustomOpKernel OfOp(nint op) => Of(((NativeCustomOp*)op)->Owner);

    [UnmanagedCallersOnly]
    private static nint GetName(nint op) => OfOp(op)._name;

    // Null names the CPU execution provider.
    [UnmanagedCallersOnly]
    private static nint CpuProvider(nint op) => 0;

    [UnmanagedCallersOnly]
    private static int InputType(nint op, nuint index) => OfOp(op)._inputTypes[(int)index];

    [UnmanagedCallersOnly]
    private static nuint InputCount(nint op) => (nuint)OfOp(op)._inputTypes.Length;

    [UnmanagedCallersOnly]
    private static int FloatType(nint op, nuint index) => OrtNative.ElementFloat;

    [UnmanagedCallersOnly]
    private static nuint OutputCount(nint op) => (nuint)OfOp(op)._outputCount;

    [UnmanagedCallersOnly]
    private static int InputCharacteristic(nint op, nuint index)
    {
        var self = OfOp(op);
        return self._lastInputVariadic && (int)index == self._inputTypes.Length - 1 ? VariadicInput : RequiredInput;
    }

    [UnmanagedCallersOnly]
    private static int Required(nint op, nuint index) => RequiredInput;

    // OrtMemTypeDefault: CPU memory of the kernel's provider.
    [UnmanagedCallersOnly]
    private static int DefaultMemory(nint op, nuint index) => 0;

    [UnmanagedCallersOnly]
    private static int One(nint op) => 1;

    // A variadic input's tensors may differ in type as far as ORT is concerned: Run checks them.
    [UnmanagedCallersOnly]
    private static int Heterogeneous(nint op) => 0;

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
        var self = Of(kernel);
        try
        {
            return self.Run(context);
        }
        catch (Exception e)
        {
            return OrtNative.CreateStatus(OrtNative.Fail, $"{Domain}.{self.OpName}: {e.Message}");
        }
    }
}
