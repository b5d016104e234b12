using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// The validated header of a GGUF file (versions 2 and 3; ggml's docs/gguf.md): the magic "GGUF", the
/// version, the tensor and metadata counts, the metadata key/values, the tensor infos, then padding to
/// the alignment (metadata general.alignment, default 32) where the data section starts. Validation is
/// as strict as llama.cpp's reader and Kiln's safetensors reader: every length and count must fit in the
/// bytes left, keys and tensor names are unique, each tensor's type is one Kiln reads, and the tensors
/// follow each other in the data section, each at the aligned end of the one before, the last one
/// ending the file (its padding aside).
/// </summary>
public sealed record GgufHeader(
    uint Version,
    IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata,
    IReadOnlyList<GgufTensorInfo> Tensors,
    long Alignment,
    long DataStart)
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const long DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    /// <summary>The header must end within this many bytes: a real one is megabytes (the vocabulary), a corrupt count can be anything.</summary>
    public const int MaxLength = 1 << 30;

    /// <summary>ggml's limit: tensor names are shorter than 64 bytes.</summary>
    public const int MaxNameBytes = 63;

    /// <summary>ggml's limit on dimensions.</summary>
    public const int MaxDims = 4;

    // The smallest encodings, which bound a count by the bytes left: a metadata entry is a key of at
    // least one byte (8 + 1), its type (4) and a value of at least one byte; a tensor info is a name of at
    // least one byte (8 + 1), its dimension count (4), type (4) and offset (8).
    private const int MinEntryBytes = 14, MinTensorBytes = 25;

    /// <summary>Reads and validates the header at the start of <paramref name="bytes"/> (the file's first bytes) of a file of <paramref name="fileLength"/> bytes.</summary>
    public static GgufHeader Read(string path, ReadOnlySpan<byte> bytes, long fileLength)
    {
        var reader = new GgufReader(path, bytes, fileLength);
        var magic = reader.U32("magic");
        if (magic != Magic)
            throw reader.Error("magic", $"not a GGUF file (starts with 0x{magic:x8}, not \"GGUF\"; a checkpoint is a Hugging Face folder or a .gguf file)");
        var version = reader.U32("version");
        if (version != 2 && version != 3)
        {
            throw reader.Error("version", (version & 0xFFFF) == 0
                ? $"{version} reads as a big-endian file, which is not supported"
                : $"{version} is not supported (versions 2 and 3 are)");
        }
        var tensorCount = reader.Count("tensor_count", "tensors", (reader.Remaining - 8) / MinTensorBytes);
        var entryCount = reader.Count("metadata_kv_count", "metadata entries", reader.Remaining / MinEntryBytes);

        var metadata = new List<KeyValuePair<string, GgufValue>>(entryCount);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < entryCount; i++)
        {
            var key = reader.String($"metadata[{i}].key");
            if (key.Length == 0) throw reader.Error($"metadata[{i}].key", "is empty");
            if (!keys.Add(key)) throw reader.Error($"metadata '{GgufText.Show(key)}'", "duplicate key");
            metadata.Add(new(key, ReadValue(ref reader, key)));
        }
        var alignment = ReadAlignment(ref reader, metadata);

        var tensors = new List<GgufTensorInfo>(tensorCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tensorCount; i++)
        {
            var (name, dims, type, offset, byteLength) = ReadTensorInfo(ref reader, i);
            if (!names.Add(name)) throw reader.Error($"tensors[{i}] {GgufText.Show(name)}", "duplicate tensor name");
            tensors.Add(new GgufTensorInfo(name, dims, type, offset, byteLength));
        }

        var dataStart = (reader.Position + alignment - 1) / alignment * alignment;
        CheckLayout(reader, tensors, alignment, dataStart, fileLength);
        return new GgufHeader(version, metadata, [.. tensors.Select(t => t with { DataOffset = dataStart + t.DataOffset })], alignment, dataStart);
    }

    private static GgufValue ReadValue(ref GgufReader reader, string key)
    {
        var field = $"metadata '{GgufText.Show(key)}'";
        var type = (GgufValueType)reader.U32(field + " type");
        if (!GgufValueTypes.IsDefined(type)) throw reader.Error(field, $"unknown value type {(uint)type}");
        if (type != GgufValueType.Array) return new GgufValue(type, ReadScalar(ref reader, type, field));

        var elementType = (GgufValueType)reader.U32(field + " element type");
        if (!GgufValueTypes.IsDefined(elementType)) throw reader.Error(field, $"unknown array element type {(uint)elementType}");
        if (elementType == GgufValueType.Array) throw reader.Error(field, "arrays of arrays are not supported (llama.cpp does not read them either)");
        // Each element takes at least its fixed size, a string at least its 8-byte length.
        var elementBytes = elementType == GgufValueType.String ? 8 : elementType.FixedSize();
        var count = reader.Count(field + " count", "elements", (reader.Remaining - 8) / elementBytes);
        return new GgufValue(type, ReadArray(ref reader, elementType, count, field), elementType);
    }

    private static object ReadScalar(ref GgufReader reader, GgufValueType type, string field)
    {
        if (type == GgufValueType.String) return reader.String(field);
        var bytes = reader.Take(type.FixedSize(), field);
        return Decode(ref reader, type, bytes, field);
    }

    private static object Decode(ref GgufReader reader, GgufValueType type, ReadOnlySpan<byte> bytes, string field) => type switch
    {
        GgufValueType.UInt8 => bytes[0],
        GgufValueType.Int8 => (sbyte)bytes[0],
        GgufValueType.UInt16 => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes),
        GgufValueType.Int16 => System.Buffers.Binary.BinaryPrimitives.ReadInt16LittleEndian(bytes),
        GgufValueType.UInt32 => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes),
        GgufValueType.Int32 => System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes),
        GgufValueType.Float32 => System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes),
        GgufValueType.Bool => bytes[0] switch { 0 => false, 1 => true, var b => throw reader.Error(field, $"boolean byte is {b}, not 0 or 1") },
        GgufValueType.UInt64 => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes),
        GgufValueType.Int64 => System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes),
        GgufValueType.Float64 => System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(bytes),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static Array ReadArray(ref GgufReader reader, GgufValueType type, int count, string field)
    {
        if (type == GgufValueType.String)
        {
            var strings = new string[count];
            for (var i = 0; i < count; i++) strings[i] = reader.String($"{field}[{i}]");
            return strings;
        }
        // The count was bounded by the bytes left, so the whole array is there to take.
        var bytes = reader.Take(checked(count * type.FixedSize()), field);
        return type switch
        {
            GgufValueType.UInt8 => bytes.ToArray(),
            GgufValueType.Int8 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(bytes).ToArray(),
            GgufValueType.UInt16 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(),
            GgufValueType.Int16 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(bytes).ToArray(),
            GgufValueType.UInt32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(bytes).ToArray(),
            GgufValueType.Int32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray(),
            GgufValueType.Float32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            GgufValueType.UInt64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes).ToArray(),
            GgufValueType.Int64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            GgufValueType.Float64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            _ => Bools(ref reader, bytes, field),
        };
    }

    private static bool[] Bools(ref GgufReader reader, ReadOnlySpan<byte> bytes, string field)
    {
        var values = new bool[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            values[i] = bytes[i] switch { 0 => false, 1 => true, var b => throw reader.Error($"{field}[{i}]", $"boolean byte is {b}, not 0 or 1") };
        }
        return values;
    }

    // general.alignment: a u32 power of two, as llama.cpp requires.
    private static long ReadAlignment(ref GgufReader reader, List<KeyValuePair<string, GgufValue>> metadata)
    {
        var entry = metadata.FirstOrDefault(kv => kv.Key == AlignmentKey).Value;
        if (entry is null) return DefaultAlignment;
        var field = $"metadata '{AlignmentKey}'";
        if (entry.Type != GgufValueType.UInt32) throw reader.Error(field, $"must be a u32, found {entry.TypeName}");
        var alignment = (uint)entry.Value;
        if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw reader.Error(field, $"{alignment} is not a power of two");
        return alignment;
    }

    private static (string Name, long[] Dims, GgmlType Type, long Offset, long ByteLength) ReadTensorInfo(ref GgufReader reader, int index)
    {
        var name = reader.String($"tensors[{index}].name");
        var field = $"tensors[{index}] {GgufText.Show(name)}";
        if (name.Length == 0) throw reader.Error($"tensors[{index}].name", "is empty");
        if (System.Text.Encoding.UTF8.GetByteCount(name) > MaxNameBytes) throw reader.Error(field, $"name is longer than {MaxNameBytes} bytes");
        var dimCount = reader.U32(field + " n_dims");
        if (dimCount > MaxDims) throw reader.Error(field, $"{dimCount} dimensions (at most {MaxDims})");
        var dims = new long[dimCount];
        long elements = 1;
        for (var d = 0; d < dims.Length; d++)
        {
            var size = reader.U64($"{field} ne[{d}]");
            if (size > long.MaxValue) throw reader.Error(field, $"dimension {d} of {size} is too large");
            dims[d] = (long)size;
            elements = MultiplyOrMax(elements, dims[d]);
        }
        var rawType = reader.U32(field + " type");
        var type = (GgmlType)rawType;
        if (!GgmlTypes.TryRead(type, out var dtype, out var blocks))
            throw reader.Error(field, $"ggml type {type.Name()} is not supported (supported: {GgmlTypes.Supported})");
        var offset = reader.U64(field + " offset");
        if (offset > long.MaxValue) throw reader.Error(field, $"offset {offset} is beyond the file");

        long byteLength;
        if (blocks is { } scheme)
        {
            var rowLength = dims.Length == 0 ? 1 : dims[0];
            if (rowLength % QuantSchemes.BlockSize != 0)
                throw reader.Error(field, $"rows of {rowLength} values are not whole {type.Name()} blocks of {QuantSchemes.BlockSize}");
            byteLength = MultiplyOrMax(elements / QuantSchemes.BlockSize, scheme.BlockBytes());
        }
        else
        {
            byteLength = MultiplyOrMax(elements, dtype.ByteSize());
        }
        if (elements == long.MaxValue || byteLength == long.MaxValue)
            throw reader.Error(field, $"dims [{string.Join(", ", dims)}] are too large");
        return (name, dims, type, (long)offset, byteLength);
    }

    // Saturates instead of overflowing: a product this large is refused by the caller.
    private static long MultiplyOrMax(long a, long b) => b != 0 && a > long.MaxValue / b ? long.MaxValue : a * b;

    /// <summary>
    /// As llama.cpp requires: in the order of the infos, each tensor starts where the one before ends, rounded up to
    /// the alignment (so offsets are aligned, and tensors never overlap or leave gaps); the file ends with the last
    /// tensor, give or take its padding.
    /// </summary>
    private static void CheckLayout(GgufReader reader, List<GgufTensorInfo> tensors, long alignment, long dataStart, long fileLength)
    {
        long expected = 0, end = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            var field = $"tensors[{i}] {GgufText.Show(tensor.Name)}";
            if (tensor.DataOffset != expected)
            {
                var why = tensor.DataOffset % alignment != 0 ? $"not a multiple of the alignment {alignment}"
                    : i == 0 ? "the first tensor starts the data section"
                    : $"the previous tensor ends at {end}, so this one starts at {expected}";
                throw reader.Error(field, $"offset {tensor.DataOffset}: {why}");
            }
            end = expected + tensor.ByteLength;
            if (end > fileLength - dataStart)
                throw reader.Error(field, $"truncated: its bytes [{dataStart + expected}, {dataStart + end}) run past the end of the file ({fileLength} bytes)");
            expected = (end + alignment - 1) / alignment * alignment;
        }
        if (fileLength - dataStart > expected)
            throw reader.Error("data section", $"{fileLength - dataStart - expected} bytes after the last tensor and its padding");
    }
}
