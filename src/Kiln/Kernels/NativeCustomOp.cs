using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// ONNX Runtime's <c>OrtCustomOp</c>: a version and a table of callbacks, in the order of
/// onnxruntime_c_api.h. ORT reads only the fields its <see cref="Version"/> has, so with version 16
/// the fields from <c>InferOutputShapeFn</c> on stay null. <see cref="Owner"/> is Kiln's own trailing
/// field, after everything ORT reads: the GCHandle of the managed op the callbacks dispatch to.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeCustomOp
{
    public uint Version;
    public nint CreateKernel;
    public nint GetName;
    public nint GetExecutionProviderType;
    public nint GetInputType;
    public nint GetInputTypeCount;
    public nint GetOutputType;
    public nint GetOutputTypeCount;
    public nint KernelCompute;
    public nint KernelDestroy;
    public nint GetInputCharacteristic;
    public nint GetOutputCharacteristic;
    public nint GetInputMemoryType;
    public nint GetVariadicInputMinArity;
    public nint GetVariadicInputHomogeneity;
    public nint GetVariadicOutputMinArity;
    public nint GetVariadicOutputHomogeneity;
    public nint CreateKernelV2;
    public nint KernelComputeV2;
    public nint InferOutputShapeFn;
    public nint GetStartVersion;
    public nint GetEndVersion;
    public nint GetMayInplace;
    public nint ReleaseMayInplace;
    public nint GetAliasMap;
    public nint ReleaseAliasMap;
    public nint Owner;
}
