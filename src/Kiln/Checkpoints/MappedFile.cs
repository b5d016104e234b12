using System.IO.MemoryMappedFiles;

namespace Kiln.Checkpoints;

/// <summary>
/// A weight file mapped read-only into memory (a safetensors or GGUF file): its bytes are handed out as
/// views of the mapping, never copied. Views and pointers are valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
    private byte* _base;

    private MappedFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        _handle = handle;
        // Acquired once: every later access is plain pointer arithmetic.
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
        _base += view.PointerOffset;
        // Pages this mapping reads in from disk come as 2 MiB page-cache folios where the filesystem keeps large
        // folios, mapped as huge pages by this and every later mapping: mapping a 2 GB file then takes a thousand
        // faults instead of a few hundred thousand page entries to make and tear down (docs/cache.md).
        Weights.PageAdvice.OfferHugePages((nint)_base, length);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>Address of the file's first byte in the mapping; valid until this file is disposed.</summary>
    public nint Address
    {
        get
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            return (nint)_base;
        }
    }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    /// <summary>The open file that is mapped (for fstat: the file mapped, whatever its path names now); valid until this file is disposed.</summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            return _handle;
        }
    }

    /// <summary>Maps the file <paramref name="stream"/> reads (it must not be empty); the mapping takes the stream over.</summary>
    public static MappedFile Map(string path, FileStream stream)
    {
        var length = stream.Length;
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        try
        {
            return new MappedFile(path, length, map, map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read), stream.SafeFileHandle);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>The tensor's bytes, without copying. Tensors over 2 GiB need <see cref="GetPointer"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo tensor)
    {
        var pointer = GetPointer(tensor);
        if (tensor.ByteLength > int.MaxValue)
        {
            throw new ArgumentException($"{tensor.Name} has {tensor.ByteLength} bytes, too many for a span; use GetPointer", nameof(tensor));
        }
        return new ReadOnlySpan<byte>((void*)pointer, (int)tensor.ByteLength);
    }

    /// <summary>Bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> of the file, a view of the mapping.</summary>
    public ReadOnlySpan<byte> GetRange(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (offset < 0 || offset > Length - length) throw new ArgumentOutOfRangeException(nameof(offset), $"{offset}+{length} is outside {Path} ({Length} bytes)");
        return new ReadOnlySpan<byte>(_base + offset, length);
    }

    /// <summary>Address of the tensor's first byte in the mapping; valid until this file is disposed.</summary>
    public nint GetPointer(TensorInfo tensor)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (tensor.File != Path || tensor.DataOffset < 0 || tensor.ByteLength < 0 || tensor.DataOffset > Length - tensor.ByteLength)
        {
            throw new ArgumentException($"{tensor.Name} ({tensor.File} at {tensor.DataOffset}) is not a tensor of {Path}", nameof(tensor));
        }
        return (nint)(_base + tensor.DataOffset);
    }

    /// <summary>
    /// Unmaps the whole pages of the tensor's bytes from this process (madvise MADV_DONTNEED): they stay in
    /// the page cache and read the same if touched again, but no longer count in the process's resident
    /// memory. For tensors read once into a product, so that a product and its sources are not both
    /// resident. Advice only: ignored where the system does not take it.
    /// </summary>
    public void ReleasePages(TensorInfo tensor) => Weights.PageAdvice.ReleaseFileBacked(GetPointer(tensor), tensor.ByteLength);

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
