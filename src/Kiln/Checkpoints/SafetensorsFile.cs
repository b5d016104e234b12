using System.IO.MemoryMappedFiles;

namespace Kiln.Checkpoints;

/// <summary>
/// A safetensors file, memory-mapped read-only. Opening reads and validates only the header; tensor
/// bytes are handed out as views of the mapping, never copied. Views and pointers are valid until
/// <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private SafetensorsFile(string path, long length, SafetensorsHeader header, MemoryMappedFile map, MemoryMappedViewAccessor view)
    {
        Path = path;
        Length = length;
        Header = header;
        _map = map;
        _view = view;
        // Acquired once: every later access is plain pointer arithmetic.
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
        _base += view.PointerOffset;
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    public SafetensorsHeader Header { get; }

    /// <summary>Tensors by name; <see cref="TensorInfo.DataOffset"/> is absolute in the file.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => Header.Tensors;

    /// <summary>The header's <c>__metadata__</c> entry (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Opens and maps <paramref name="path"/>; throws <see cref="KilnException"/> for a missing or malformed file.</summary>
    public static SafetensorsFile Open(string path) =>
        // A regular file only: a FIFO would block the open, and a device has no fixed length to map.
        Open(path, RegularFile.OpenRead(path));

    /// <summary>Reads the header from <paramref name="stream"/> (which it takes over) and maps the file it reads.</summary>
    public static SafetensorsFile Open(string path, FileStream stream)
    {
        MemoryMappedFile? map = null;
        try
        {
            var header = SafetensorsHeader.Read(path, stream);
            var length = stream.Length;
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new SafetensorsFile(path, length, header, map, view);
        }
        catch (Exception e)
        {
            if (map != null) map.Dispose();
            else stream.Dispose();
            if (e is IOException or UnauthorizedAccessException) throw new KilnException($"{path}: cannot read: {e.Message}", e);
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
        if (tensor.File != Path || tensor.DataOffset < Header.DataStart || tensor.ByteLength < 0 || tensor.DataOffset > Length - tensor.ByteLength)
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
    public void ReleasePages(TensorInfo tensor)
    {
        var start = (long)GetPointer(tensor);
        long page = Environment.SystemPageSize;
        var (first, end) = ((start + page - 1) / page * page, (start + tensor.ByteLength) / page * page);
        if (OperatingSystem.IsLinux() && end > first) _ = madvise((nint)first, (nuint)(end - first), MadvDontNeed);
    }

    private const int MadvDontNeed = 4;

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int madvise(nint address, nuint length, int advice);

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
