namespace Kiln.Checkpoints;

/// <summary>
/// A safetensors file, memory-mapped read-only (<see cref="MappedFile"/>). Opening reads and validates only
/// the header; tensor bytes are handed out as views of the mapping, never copied. Views and pointers are
/// valid until <see cref="Dispose"/>.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private SafetensorsFile(SafetensorsHeader header, MappedFile mapping)
    {
        Header = header;
        Mapping = mapping;
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path => Mapping.Path;

    /// <summary>The file's size in bytes.</summary>
    public long Length => Mapping.Length;

    public SafetensorsHeader Header { get; }

    /// <summary>The file's bytes, mapped.</summary>
    public MappedFile Mapping { get; }

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
        var mapped = false;
        try
        {
            var header = SafetensorsHeader.Read(path, stream);
            var mapping = MappedFile.Map(path, stream);
            mapped = true;
            return new SafetensorsFile(header, mapping);
        }
        catch (Exception e)
        {
            if (!mapped) stream.Dispose();
            if (e is IOException or UnauthorizedAccessException) throw new KilnException($"{path}: cannot read: {e.Message}", e);
            throw;
        }
    }

    /// <summary>The tensor's bytes, without copying. Tensors over 2 GiB need <see cref="GetPointer"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo tensor)
    {
        CheckInData(tensor);
        return Mapping.GetBytes(tensor);
    }

    /// <summary>Bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> of the file, a view of the mapping.</summary>
    public ReadOnlySpan<byte> GetRange(long offset, int length) => Mapping.GetRange(offset, length);

    /// <summary>Address of the tensor's first byte in the mapping; valid until this file is disposed.</summary>
    public nint GetPointer(TensorInfo tensor)
    {
        CheckInData(tensor);
        return Mapping.GetPointer(tensor);
    }

    /// <summary>See <see cref="MappedFile.ReleasePages"/>.</summary>
    public void ReleasePages(TensorInfo tensor) => Mapping.ReleasePages(tensor);

    public void Dispose() => Mapping.Dispose();

    private void CheckInData(TensorInfo tensor)
    {
        if (tensor.DataOffset < Header.DataStart)
            throw new ArgumentException($"{tensor.Name} ({tensor.File} at {tensor.DataOffset}) is not a tensor of {Path}", nameof(tensor));
    }
}
