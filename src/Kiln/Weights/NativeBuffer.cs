using System.Runtime.InteropServices;

namespace Kiln.Weights;

/// <summary>
/// Native memory aligned to 64 bytes (a cache line, and enough for any vector width ONNX Runtime
/// uses), freed on dispose or, if forgotten, by the finalizer.
/// </summary>
internal sealed unsafe class NativeBuffer : SafeHandle
{
    public const int Alignment = 64;

    public NativeBuffer(long byteLength) : base(0, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteLength);
        // A zero-byte request still gets a real allocation, so the pointer is never null.
        SetHandle((nint)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), Alignment));
        ByteLength = byteLength;
    }

    public long ByteLength { get; }

    public nint Pointer => handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
