using System.Text;

namespace Kiln.Bench.LlamaCpp;

/// <summary>GGUF metadata value types (ggml's gguf_type), as written in the file.</summary>
internal enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>The ggml tensor types this program writes or reads back (ggml_type's numbers).</summary>
internal enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>Block sizes of the ggml types: elements per block and bytes per block.</summary>
internal static class GgmlTypes
{
    public static (int Elements, int Bytes) Block(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => throw new NotSupportedException($"ggml type {(uint)type} has no known block size here"),
    };

    /// <summary>Bytes of a row of <paramref name="elements"/> values (a whole number of blocks).</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        var (per, bytes) = Block(type);
        if (elements % per != 0) throw new InvalidDataException($"{type}: a row of {elements} is not a whole number of {per}-element blocks");
        return elements / per * bytes;
    }
}

/// <summary>One metadata value: its type, and for arrays the element type; Value is a CLR scalar, string or array.</summary>
internal sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Str(string v) => new(GgufValueType.String, v);
    public static GgufValue Strings(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Floats(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Ints(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);
}

/// <summary>A tensor of a GGUF file: dims in GGUF order (ne[0] first: the contiguous one), type, offset within the data section.</summary>
internal sealed record GgufTensor(string Name, long[] Dims, GgmlType Type, long Offset)
{
    public long Elements => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes in the file: rows of ne[0] elements, each a whole number of blocks.</summary>
    public long ByteLength => GgmlTypes.RowBytes(Type, Dims[0]) * (Elements / Dims[0]);
}

/// <summary>
/// A GGUF file, version 3 (ggml's docs/gguf.md): "GGUF", version, tensor count, metadata count, the
/// metadata key/values, the tensor infos, padding to the alignment, then the tensors' data, each at an
/// offset (relative to the data section) that is a multiple of the alignment. Little-endian throughout.
/// </summary>
internal sealed class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const uint Version = 3;
    public const int DefaultAlignment = 32;

    public required uint FileVersion { get; init; }
    public required IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; init; }
    public required IReadOnlyList<GgufTensor> Tensors { get; init; }
    public required long DataStart { get; init; }
    public required int Alignment { get; init; }
    public required long FileLength { get; init; }

    public GgufValue? Get(string key) => Metadata.FirstOrDefault(kv => kv.Key == key).Value;

    /// <summary>Reads the header, metadata and tensor infos, and checks every tensor lies aligned inside the file.</summary>
    public static GgufFile Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        if (reader.ReadUInt32() != Magic) throw new InvalidDataException($"{path}: not a GGUF file (magic)");
        var version = reader.ReadUInt32();
        if (version is < 2 or > 3) throw new InvalidDataException($"{path}: GGUF version {version} is not supported");
        var tensorCount = checked((int)reader.ReadUInt64());
        var kvCount = checked((int)reader.ReadUInt64());
        var metadata = new List<KeyValuePair<string, GgufValue>>(kvCount);
        for (var i = 0; i < kvCount; i++)
        {
            var key = ReadString(reader);
            var type = (GgufValueType)reader.ReadUInt32();
            metadata.Add(new(key, ReadValue(reader, type)));
        }
        var alignment = metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value is { } a ? Convert.ToInt32(a.Value) : DefaultAlignment;
        var tensors = new List<GgufTensor>(tensorCount);
        for (var i = 0; i < tensorCount; i++)
        {
            var name = ReadString(reader);
            var dims = new long[reader.ReadUInt32()];
            for (var d = 0; d < dims.Length; d++) dims[d] = checked((long)reader.ReadUInt64());
            var type = (GgmlType)reader.ReadUInt32();
            tensors.Add(new GgufTensor(name, dims, type, checked((long)reader.ReadUInt64())));
        }
        var dataStart = Align(stream.Position, alignment);
        var file = new GgufFile
        {
            FileVersion = version, Metadata = metadata, Tensors = tensors, DataStart = dataStart, Alignment = alignment, FileLength = stream.Length,
        };
        foreach (var t in tensors)
        {
            if (t.Offset % alignment != 0) throw new InvalidDataException($"{path}: {t.Name}: offset {t.Offset} is not a multiple of {alignment}");
            if (dataStart + t.Offset + t.ByteLength > stream.Length) throw new InvalidDataException($"{path}: {t.Name}: data runs past the end of the file");
        }
        var duplicate = tensors.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new InvalidDataException($"{path}: tensor {duplicate.Key} appears twice");
        return file;
    }

    public static long Align(long offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    private static string ReadString(BinaryReader reader)
    {
        var length = checked((int)reader.ReadUInt64());
        return Encoding.UTF8.GetString(reader.ReadBytes(length));
    }

    private static GgufValue ReadValue(BinaryReader reader, GgufValueType type)
    {
        if (type != GgufValueType.Array) return new GgufValue(type, ReadScalar(reader, type));
        var elementType = (GgufValueType)reader.ReadUInt32();
        var count = checked((int)reader.ReadUInt64());
        Array values = elementType switch
        {
            GgufValueType.String => new string[count],
            GgufValueType.Float32 => new float[count],
            GgufValueType.Int32 => new int[count],
            GgufValueType.UInt32 => new uint[count],
            _ => new object[count],
        };
        for (var i = 0; i < count; i++) values.SetValue(ReadScalar(reader, elementType), i);
        return new GgufValue(type, values, elementType);
    }

    private static object ReadScalar(BinaryReader reader, GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => reader.ReadByte(),
        GgufValueType.Int8 => reader.ReadSByte(),
        GgufValueType.UInt16 => reader.ReadUInt16(),
        GgufValueType.Int16 => reader.ReadInt16(),
        GgufValueType.UInt32 => reader.ReadUInt32(),
        GgufValueType.Int32 => reader.ReadInt32(),
        GgufValueType.Float32 => reader.ReadSingle(),
        GgufValueType.Bool => reader.ReadByte() switch { 0 => false, 1 => true, var b => throw new InvalidDataException($"bool value {b}") },
        GgufValueType.String => ReadString(reader),
        GgufValueType.UInt64 => reader.ReadUInt64(),
        GgufValueType.Int64 => reader.ReadInt64(),
        GgufValueType.Float64 => reader.ReadDouble(),
        _ => throw new InvalidDataException($"metadata value type {(uint)type} (nested arrays are not read here)"),
    };
}

/// <summary>
/// Writes a GGUF v3 file: metadata and tensor infos first (so every tensor's type and shape must be
/// known up front), then each tensor's bytes in declaration order, padded to the alignment.
/// </summary>
internal sealed class GgufWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly BinaryWriter _writer;
    private readonly List<GgufTensor> _tensors;
    private readonly int _alignment;
    private readonly long _dataStart;
    private int _next;
    private long _written;

    private GgufWriter(FileStream stream, List<GgufTensor> tensors, int alignment, long dataStart)
    {
        _stream = stream;
        _writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        _tensors = tensors;
        _alignment = alignment;
        _dataStart = dataStart;
    }

    public IReadOnlyList<GgufTensor> Tensors => _tensors;

    /// <summary>Creates <paramref name="path"/> and writes everything before the data section.</summary>
    public static GgufWriter Create(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<(string Name, long[] Dims, GgmlType Type)> tensors, int alignment = GgufFile.DefaultAlignment)
    {
        var laidOut = new List<GgufTensor>(tensors.Count);
        long offset = 0;
        foreach (var (name, dims, type) in tensors)
        {
            var tensor = new GgufTensor(name, dims, type, offset);
            laidOut.Add(tensor);
            offset = GgufFile.Align(offset + tensor.ByteLength, alignment);
        }
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(GgufFile.Version);
        w.Write((ulong)laidOut.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        foreach (var t in laidOut)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (var d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)t.Offset);
        }
        w.Flush();
        var dataStart = GgufFile.Align(stream.Position, alignment);
        Pad(stream, dataStart - stream.Position);
        return new GgufWriter(stream, laidOut, alignment, dataStart);
    }

    /// <summary>The next tensor's bytes, whole (exactly its byte length).</summary>
    public void WriteTensor(string name, ReadOnlySpan<byte> bytes)
    {
        if (_next >= _tensors.Count) throw new InvalidOperationException($"{name}: all {_tensors.Count} tensors are written");
        var tensor = _tensors[_next];
        if (tensor.Name != name) throw new InvalidOperationException($"expected tensor {tensor.Name} next, got {name}");
        if (bytes.Length != tensor.ByteLength) throw new ArgumentException($"{name}: {bytes.Length} bytes, expected {tensor.ByteLength}");
        if (_stream.Position != _dataStart + tensor.Offset) throw new InvalidOperationException($"{name}: stream at {_stream.Position}, tensor at {_dataStart + tensor.Offset}");
        _stream.Write(bytes);
        _written += bytes.Length;
        _next++;
        var end = _next < _tensors.Count ? _tensors[_next].Offset : GgufFile.Align(tensor.Offset + tensor.ByteLength, _alignment);
        Pad(_stream, _dataStart + end - _stream.Position);
    }

    public void Complete()
    {
        if (_next != _tensors.Count) throw new InvalidOperationException($"{_tensors.Count - _next} tensors not written (next: {_tensors[_next].Name})");
        _stream.Flush(flushToDisk: false);
    }

    public void Dispose()
    {
        _writer.Dispose();
        _stream.Dispose();
    }

    private static void Pad(Stream stream, long count)
    {
        for (long i = 0; i < count; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        if (value.Type != GgufValueType.Array)
        {
            WriteScalar(w, value.Type, value.Value);
            return;
        }
        var items = (Array)value.Value;
        w.Write((uint)value.ElementType);
        w.Write((ulong)items.Length);
        foreach (var item in items) WriteScalar(w, value.ElementType, item!);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new NotSupportedException($"writing metadata of type {type}");
        }
    }
}
