using System.Security.Cryptography;
using System.Text.Json;
using Kiln.Graph;

namespace Kiln.Checkpoints;

/// <summary>A tensor to be written: its name, dtype and shape (the bytes come later).</summary>
public sealed record SafetensorsEntry(string Name, DType DType, long[] Shape)
{
    public long ByteLength => Shape.Aggregate(1L, (a, b) => checked(a * b)) * DType.ByteSize();
}

/// <summary>
/// Streams a safetensors file of any size: the header is computed from the declared tensors, then
/// their bytes are appended in <see cref="Order"/>, in as many pieces as the caller likes. The header
/// is padded with spaces to a multiple of 8 bytes and tensors are ordered by element size, largest
/// first, so every tensor starts aligned to its element size. A writer disposed before
/// <see cref="Complete"/> deletes its file.
/// </summary>
public sealed class SafetensorsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly IncrementalHash? _digest;
    private readonly long[] _starts;
    private readonly long _total;
    private readonly Dictionary<string, int> _indexByName;
    private long _written;
    private bool _closed;

    private SafetensorsWriter(string path, FileStream stream, IReadOnlyList<SafetensorsEntry> order, IncrementalHash? digest)
    {
        Path = path;
        _stream = stream;
        _digest = digest;
        Order = order;
        _starts = new long[order.Count];
        _indexByName = Enumerable.Range(0, order.Count).ToDictionary(i => order[i].Name, StringComparer.Ordinal);
        for (var i = 0; i < order.Count; i++)
        {
            _starts[i] = _total;
            _total += order[i].ByteLength;
        }
    }

    public string Path { get; }

    /// <summary>The order in which tensor bytes must be written.</summary>
    public IReadOnlyList<SafetensorsEntry> Order { get; }

    /// <summary>
    /// Creates <paramref name="path"/> (replacing a file there) and writes its header. Every byte written
    /// to the file is also appended to <paramref name="digest"/> when given, so a caller that needs the
    /// file's checksum does not read it back.
    /// </summary>
    public static SafetensorsWriter Create(string path, IEnumerable<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IncrementalHash? digest = null)
    {
        var order = tensors.OrderByDescending(t => t.DType.ByteSize()).ToList();
        var duplicate = order.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1 || g.Key == "__metadata__");
        if (duplicate != null)
        {
            throw new ArgumentException($"tensor name {duplicate.Key} is used twice or reserved", nameof(tensors));
        }
        var header = Header(order, metadata);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        var writer = new SafetensorsWriter(path, stream, order, digest);
        try
        {
            Span<byte> length = stackalloc byte[8];
            BitConverter.TryWriteBytes(length, (ulong)header.Length);
            writer.Append(length);
            writer.Append(header);
            return writer;
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    /// <summary>Appends the next bytes of tensor data; pieces may cross tensor boundaries.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (bytes.Length > _total - _written)
        {
            throw new InvalidOperationException($"{Path}: {bytes.Length} more bytes exceed the {_total} bytes the header declares");
        }
        Append(bytes);
        _written += bytes.Length;
    }

    /// <summary>Writes the whole of tensor <paramref name="name"/>, which must be the next in <see cref="Order"/>.</summary>
    public void WriteTensor(string name, ReadOnlySpan<byte> data)
    {
        var index = _indexByName.GetValueOrDefault(name, -1);
        if (index < 0 || _starts[index] != _written || data.Length != Order[index].ByteLength)
        {
            throw new InvalidOperationException(index < 0
                ? $"{Path}: tensor {name} was not declared"
                : $"{Path}: tensor {name} ({Order[index].ByteLength} bytes at data offset {_starts[index]}) " +
                  $"is not next or not whole: {data.Length} bytes at offset {_written}");
        }
        Write(data);
    }

    /// <summary>Checks that every declared byte was written, then flushes the file to disk.</summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_written != _total)
        {
            throw new InvalidOperationException($"{Path}: {_written} of {_total} data bytes written");
        }
        _stream.Flush(flushToDisk: true);
        _closed = true;
        _stream.Dispose();
    }

    /// <summary>
    /// Completes the file with every data byte not yet written set to zero by extending its length:
    /// on file systems with sparse files (ext4, xfs, btrfs, tmpfs) those zeros use no disk.
    /// </summary>
    public void CompleteWithZeros()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_digest is not null) throw new InvalidOperationException($"{Path}: a digested file cannot end in a sparse region");
        _stream.Flush();
        _stream.SetLength(_stream.Length + (_total - _written));
        _written = _total;
        Complete();
    }

    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        _stream.Dispose();
        File.Delete(Path);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        _stream.Write(bytes);
        _digest?.AppendData(bytes);
    }

    private static byte[] Header(IReadOnlyList<SafetensorsEntry> order, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            var offset = 0L;
            foreach (var tensor in order)
            {
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (var d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset += tensor.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        // Spaces after the JSON are allowed by the format; they put the data section on an 8-byte boundary.
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
