using System.Runtime.InteropServices;

namespace Kiln.Kernels;

/// <summary>
/// The few functions of ONNX Runtime's C API that custom kernels need and the C# package does not
/// expose. <c>OrtApi</c> is a table of function pointers that only ever grows at the end, so each
/// function is found by its fixed index (checked against the Microsoft.ML.OnnxRuntime package's own
/// mirror of the table, and exercised by the kernel tests).
/// </summary>
internal static unsafe class OrtNative
{
    /// <summary>The API version asked for: 17 has every function used here (KernelContext_ParallelFor is the newest).</summary>
    public const uint ApiVersion = 17;

    /// <summary>The <c>OrtCustomOp</c> version Kiln's ops declare: 16 has the V2 kernel callbacks (statuses, not exceptions).</summary>
    public const uint CustomOpVersion = 16;

    /// <summary>ONNXTensorElementDataType values: UNDEFINED (in a custom op's declaration: any type), FLOAT, FLOAT16, BFLOAT16.</summary>
    public const int ElementUndefined = 0, ElementFloat = 1, ElementFloat16 = 10, ElementBFloat16 = 16;

    /// <summary>OrtErrorCode ORT_INVALID_ARGUMENT and ORT_FAIL.</summary>
    public const int InvalidArgument = 2, Fail = 1;

    private const int CreateStatusIndex = 0;
    private const int GetErrorMessageIndex = 2;
    private const int CreateCustomOpDomainIndex = 26;
    private const int CustomOpDomainAddIndex = 27;
    private const int AddCustomOpDomainIndex = 28;
    private const int GetTensorMutableDataIndex = 51;
    private const int GetTensorElementTypeIndex = 60;
    private const int GetDimensionsCountIndex = 61;
    private const int GetDimensionsIndex = 62;
    private const int GetTensorTypeAndShapeIndex = 65;
    private const int KernelContextGetInputCountIndex = 88;
    private const int KernelContextGetInputIndex = 90;
    private const int KernelContextGetOutputIndex = 91;
    private const int ReleaseStatusIndex = 93;
    private const int ReleaseTensorTypeAndShapeInfoIndex = 99;
    private const int ReleaseCustomOpDomainIndex = 101;
    private const int KernelContextParallelForIndex = 274;

    [StructLayout(LayoutKind.Sequential)]
    private struct OrtApiBase
    {
        public delegate* unmanaged<uint, void**> GetApi;
        public delegate* unmanaged<byte*> GetVersionString;
    }

    [DllImport("onnxruntime")]
    private static extern OrtApiBase* OrtGetApiBase();

    private static readonly void** Api = LoadApi();

    private static void** LoadApi()
    {
        var api = OrtGetApiBase()->GetApi(ApiVersion);
        if (api == null) throw new KilnException($"the loaded ONNX Runtime does not offer C API version {ApiVersion}, which Kiln's kernels need");
        return api;
    }

    public static nint CreateStatus(int code, string message)
    {
        var text = Marshal.StringToCoTaskMemUTF8(message);
        try
        {
            return ((delegate* unmanaged<int, nint, nint>)Api[CreateStatusIndex])(code, text);
        }
        finally
        {
            Marshal.FreeCoTaskMem(text);
        }
    }

    public static nint CreateCustomOpDomain(string domain)
    {
        var text = Marshal.StringToCoTaskMemUTF8(domain);
        try
        {
            nint result;
            Check(((delegate* unmanaged<nint, nint*, nint>)Api[CreateCustomOpDomainIndex])(text, &result));
            return result;
        }
        finally
        {
            Marshal.FreeCoTaskMem(text);
        }
    }

    public static void CustomOpDomainAdd(nint domain, void* op) =>
        Check(((delegate* unmanaged<nint, void*, nint>)Api[CustomOpDomainAddIndex])(domain, op));

    public static void AddCustomOpDomain(nint sessionOptions, nint domain) =>
        Check(((delegate* unmanaged<nint, nint, nint>)Api[AddCustomOpDomainIndex])(sessionOptions, domain));

    public static void ReleaseCustomOpDomain(nint domain) =>
        ((delegate* unmanaged<nint, void>)Api[ReleaseCustomOpDomainIndex])(domain);

    public static int KernelInputCount(nint context)
    {
        nuint count;
        Check(((delegate* unmanaged<nint, nuint*, nint>)Api[KernelContextGetInputCountIndex])(context, &count));
        return (int)count;
    }

    public static nint KernelInput(nint context, int index)
    {
        nint value;
        Check(((delegate* unmanaged<nint, nuint, nint*, nint>)Api[KernelContextGetInputIndex])(context, (nuint)index, &value));
        return value;
    }

    public static nint KernelOutput(nint context, int index, ReadOnlySpan<long> dims)
    {
        nint value;
        fixed (long* d = dims)
            Check(((delegate* unmanaged<nint, nuint, long*, nuint, nint*, nint>)Api[KernelContextGetOutputIndex])(context, (nuint)index, d, (nuint)dims.Length, &value));
        return value;
    }

    public static void* TensorData(nint value)
    {
        void* data;
        Check(((delegate* unmanaged<nint, void**, nint>)Api[GetTensorMutableDataIndex])(value, &data));
        return data;
    }

    /// <summary>
    /// Runs <paramref name="function"/>(<paramref name="state"/>, i) for i in [0, <paramref name="total"/>) on
    /// the session's intra-op thread pool (the calling thread takes part) and returns when all are done.
    /// </summary>
    public static void ParallelFor(nint context, delegate* unmanaged<void*, nuint, void> function, int total, void* state) =>
        Check(((delegate* unmanaged<nint, delegate* unmanaged<void*, nuint, void>, nuint, nuint, void*, nint>)Api[KernelContextParallelForIndex])(
            context, function, (nuint)total, 0, state));

    /// <summary>The tensor's dimensions, written to <paramref name="dims"/>, and its element type; returns the rank.</summary>
    public static int TensorShape(nint value, Span<long> dims, out int elementType)
    {
        nint info;
        Check(((delegate* unmanaged<nint, nint*, nint>)Api[GetTensorTypeAndShapeIndex])(value, &info));
        try
        {
            int type;
            Check(((delegate* unmanaged<nint, int*, nint>)Api[GetTensorElementTypeIndex])(info, &type));
            elementType = type;
            nuint rank;
            Check(((delegate* unmanaged<nint, nuint*, nint>)Api[GetDimensionsCountIndex])(info, &rank));
            if ((int)rank > dims.Length) throw new KilnException($"tensor of rank {rank}: at most {dims.Length} supported");
            fixed (long* d = dims)
                Check(((delegate* unmanaged<nint, long*, nuint, nint>)Api[GetDimensionsIndex])(info, d, rank));
            return (int)rank;
        }
        finally
        {
            ((delegate* unmanaged<nint, void>)Api[ReleaseTensorTypeAndShapeInfoIndex])(info);
        }
    }

    /// <summary>An element type as ONNX names it, for error messages.</summary>
    public static string ElementTypeName(int type) => type switch
    {
        ElementFloat => "float",
        ElementFloat16 => "float16",
        ElementBFloat16 => "bfloat16",
        _ => $"element type {type}",
    };

    // A non-null OrtStatus* is an error: its message becomes the exception's, and the status is freed.
    private static void Check(nint status)
    {
        if (status == 0) return;
        var message = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)Api[GetErrorMessageIndex])(status));
        ((delegate* unmanaged<nint, void>)Api[ReleaseStatusIndex])(status);
        throw new KilnException($"ONNX Runtime: {message}");
    }
}
