namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// A GGUF file (llama.cpp's format), memory-mapped read-only. Opening reads and validates the header
/// (<see cref="GgufHeader"/>) from the mapping; tensor bytes stay in the mapping until <see cref="Dispose"/>.
/// </summary>
public sealed class GgufFile : IDisposable
{
    private GgufFile(GgufHeader header, GgufMetadata metadata, MappedFile mapping)
    {
        Header = header;
        Metadata = metadata;
        Mapping = mapping;
    }

    public GgufHeader Header { get; }

    /// <summary>The metadata key/values, with typed reads whose errors name this file and the key.</summary>
    public GgufMetadata Metadata { get; }

    public MappedFile Mapping { get; }

    /// <summary>Opens, maps and validates <paramref name="path"/>; throws <see cref="KilnException"/> naming the file and field at fault.</summary>
    public static GgufFile Open(string path)
    {
        // A regular file only: a FIFO would block the open, and a device has no fixed length to map.
        var stream = RegularFile.OpenRead(path);
        MappedFile? mapping = null;
        try
        {
            var length = stream.Length;
            // The magic, version and two counts; an empty file cannot be mapped.
            if (length < 24) throw KilnException.InFile(path, "header", $"truncated: the file has {length} bytes, fewer than a GGUF header's 24");
            mapping = MappedFile.Map(path, stream);
            var header = GgufHeader.Read(path, mapping.GetRange(0, (int)Math.Min(length, GgufHeader.MaxLength)), length);
            return new GgufFile(header, new GgufMetadata(path, header.Metadata), mapping);
        }
        catch (Exception e)
        {
            if (mapping is null) stream.Dispose();
            else mapping.Dispose();
            if (e is IOException or UnauthorizedAccessException) throw new KilnException($"{path}: cannot read: {e.Message}", e);
            throw;
        }
    }

    public void Dispose() => Mapping.Dispose();
}
