using System.Runtime.InteropServices;
using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Tests.Compile;

/// <summary>A copy of some values in native memory, as Kiln's weight store holds parameters.</summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private readonly long _byteLength;

    private NativeBuffer(nint pointer, long byteLength) { Pointer = pointer; _byteLength = byteLength; }

    public nint Pointer { get; private set; }

    public static NativeBuffer Of<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        var pointer = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes.Length, 1), 64);
        bytes.CopyTo(new Span<byte>((void*)pointer, bytes.Length));
        return new NativeBuffer(pointer, bytes.Length);
    }

    public ExternalInitializer As(string name, DType type, long[] shape) => new(name, type, shape, Pointer, _byteLength);

    public void Dispose()
    {
        NativeMemory.AlignedFree((void*)Pointer);
        Pointer = 0;
    }
}
