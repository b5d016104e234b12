using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// The bytes of one graph parameter, ready to hand to the runtime. Either a view of the memory-mapped
/// checkpoint (<see cref="IsCopy"/> false; valid while the checkpoint is open) or a native buffer
/// aligned to 64 bytes that this object owns and frees on <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class ParameterData : IDisposable
{
    private readonly NativeBuffer? _owner;

    internal ParameterData(string name, DType dtype, long[] shape, nint pointer, long byteLength, NativeBuffer? owner)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Pointer = pointer;
        ByteLength = byteLength;
        _owner = owner;
    }

    public string Name { get; }

    public DType DType { get; }

    public long[] Shape { get; }

    /// <summary>Address of the first byte, aligned at least to the element size.</summary>
    public nint Pointer { get; }

    public long ByteLength { get; }

    /// <summary>True when the bytes were produced into a buffer of their own; false for a view of the checkpoint file.</summary>
    public bool IsCopy => _owner != null;

    /// <summary>The bytes as a span (parameters up to 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(_owner is { IsClosed: true }, this);
            if (ByteLength > int.MaxValue)
            {
                throw new InvalidOperationException($"{Name} has {ByteLength} bytes, too many for a span; use Pointer");
            }
            return new ReadOnlySpan<byte>((void*)Pointer, (int)ByteLength);
        }
    }

    public void Dispose() => _owner?.Dispose();
}
