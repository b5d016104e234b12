using System.Text;
using Kiln.Checkpoints.Gguf;

namespace Kiln.Tests.Checkpoints.Gguf;

/// <summary>One tensor to write: its dims in GGUF order (ne[0], the contiguous one, first), its type and its bytes.</summary>
public sealed record GgufTensorData(string Name, long[] Dims, GgmlType Type, byte[] Bytes);

/// <summary>
/// Writes GGUF files for the tests, as llama.cpp's gguf writer lays them out: the header, the metadata,
/// the tensor infos, padding to the alignment, then each tensor at an aligned offset, padded after. The
/// offsets and lengths are taken as given, so a test can write a file the reader must refuse.
/// </summary>
public static class GgufWriter
{
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorData> tensors, uint version = 3) =>
        File.WriteAllBytes(path, Bytes(metadata, tensors, version));

    public static byte[] Bytes(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorData> tensors, uint version = 3)
    {
        var alignment = metadata.FirstOrDefault(kv => kv.Key == GgufHeader.AlignmentKey).Value?.Value is uint a ? a : GgufHeader.DefaultAlignment;
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufHeader.Magic);
        w.Write(version);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        long offset = 0;
        foreach (var tensor in tensors)
        {
            WriteString(w, tensor.Name);
            w.Write((uint)tensor.Dims.Length);
            foreach (var d in tensor.Dims) w.Write((ulong)d);
            w.Write((uint)tensor.Type);
            w.Write((ulong)offset);
            offset = Align(offset + tensor.Bytes.Length, alignment);
        }
        w.Flush();
        Pad(stream, alignment);
        foreach (var tensor in tensors)
        {
            stream.Write(tensor.Bytes);
            Pad(stream, alignment);
        }
        return stream.ToArray();
    }

    public static long Align(long offset, long alignment) => (offset + alignment - 1) / alignment * alignment;

    private static void Pad(Stream stream, long alignment)
    {
        while (stream.Position % alignment != 0) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        if (!value.IsArray)
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
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }
}
