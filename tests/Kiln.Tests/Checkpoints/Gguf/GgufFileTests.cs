using System.Buffers.Binary;
using Kiln.Checkpoints.Gguf;

namespace Kiln.Tests.Checkpoints.Gguf;

/// <summary>The GGUF reader: the default model's file, every metadata type, and each malformation it must refuse with one line naming the file and field.</summary>
public sealed class GgufFileTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Reads_the_default_models_gguf()
    {
        using var file = GgufFile.Open(GgufModels.Stories260K);
        Assert.Equal(3u, file.Header.Version);
        Assert.Equal(32, file.Header.Alignment);
        Assert.Equal(19, file.Header.Metadata.Count);
        Assert.Equal(48, file.Header.Tensors.Count);
        Assert.Equal(14176, file.Header.DataStart); // 14152 bytes of header, padded to 32
        Assert.Equal("llama", file.Metadata.String("general.architecture"));
        Assert.Equal(5, file.Metadata.Integer("llama.block_count"));
        Assert.Equal(1e-5f, (float)file.Metadata.Number("llama.attention.layer_norm_rms_epsilon")!.Value);
        Assert.Equal(512, file.Metadata.Strings("tokenizer.ggml.tokens")!.Length);
        Assert.Equal("<0x0A>", file.Metadata.Strings("tokenizer.ggml.tokens")![13]);
        Assert.Equal(-252.0, file.Metadata.Numbers("tokenizer.ggml.scores")![^1]);
        var q = file.Header.Tensors.Single(t => t.Name == "blk.0.attn_k.weight");
        Assert.Equal([64L, 32], q.Dims);
        Assert.Equal([32L, 64], q.Shape);
        Assert.Equal(GgmlType.F32, q.Type);
        Assert.Equal(file.Header.DataStart + 278784, q.DataOffset);
        Assert.Equal(32 * 64 * 4, q.ByteLength);
    }

    [Fact]
    public void Writing_back_what_was_read_gives_the_same_bytes()
    {
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        Assert.Equal(File.ReadAllBytes(GgufModels.Stories260K), GgufWriter.Bytes(metadata, tensors));
    }

    public static TheoryData<GgufValue> EveryType => new()
    {
        new GgufValue(GgufValueType.UInt8, (byte)200),
        new GgufValue(GgufValueType.Int8, (sbyte)-100),
        new GgufValue(GgufValueType.UInt16, (ushort)60000),
        new GgufValue(GgufValueType.Int16, (short)-30000),
        new GgufValue(GgufValueType.UInt32, 4000000000u),
        new GgufValue(GgufValueType.Int32, -2000000000),
        new GgufValue(GgufValueType.Float32, 1.5f),
        new GgufValue(GgufValueType.Bool, true),
        new GgufValue(GgufValueType.String, "héllo ✓ 🙂"),
        new GgufValue(GgufValueType.UInt64, ulong.MaxValue),
        new GgufValue(GgufValueType.Int64, long.MinValue),
        new GgufValue(GgufValueType.Float64, -2.25),
        new GgufValue(GgufValueType.Array, new byte[] { 1, 2, 255 }, GgufValueType.UInt8),
        new GgufValue(GgufValueType.Array, new sbyte[] { -1, 2 }, GgufValueType.Int8),
        new GgufValue(GgufValueType.Array, new ushort[] { 1, 65535 }, GgufValueType.UInt16),
        new GgufValue(GgufValueType.Array, new short[] { -1, 2 }, GgufValueType.Int16),
        new GgufValue(GgufValueType.Array, new uint[] { 1, uint.MaxValue }, GgufValueType.UInt32),
        new GgufValue(GgufValueType.Array, new[] { -1, 2 }, GgufValueType.Int32),
        new GgufValue(GgufValueType.Array, new[] { 0.5f, -1f }, GgufValueType.Float32),
        new GgufValue(GgufValueType.Array, new[] { true, false }, GgufValueType.Bool),
        new GgufValue(GgufValueType.Array, new[] { "a", "", "ü" }, GgufValueType.String),
        new GgufValue(GgufValueType.Array, new[] { ulong.MaxValue }, GgufValueType.UInt64),
        new GgufValue(GgufValueType.Array, new[] { long.MinValue, 0L }, GgufValueType.Int64),
        new GgufValue(GgufValueType.Array, new[] { 1e300, -0.0 }, GgufValueType.Float64),
        new GgufValue(GgufValueType.Array, Array.Empty<string>(), GgufValueType.String),
    };

    [Theory]
    [MemberData(nameof(EveryType))]
    public void Every_metadata_type_reads_back(GgufValue value)
    {
        var path = Write(Metadata(("key", value)), [Tensor("t", GgmlType.F32, 4)]);
        using var file = GgufFile.Open(path);
        var read = file.Metadata.Get("key")!;
        Assert.Equal(value.Type, read.Type);
        Assert.Equal(value.TypeName, read.TypeName);
        Assert.Equal(value.Value, read.Value);
    }

    [Fact]
    public void Reads_version_2_and_the_alignment_key()
    {
        var metadata = Metadata((GgufHeader.AlignmentKey, new GgufValue(GgufValueType.UInt32, 64u)));
        var path = dir.File("v2.gguf");
        GgufWriter.Write(path, metadata, [Tensor("a", GgmlType.F32, 3), Tensor("b", GgmlType.Q8_0, 64), Tensor("c", GgmlType.Q4_0, 32), Tensor("d", GgmlType.BF16, 2)], version: 2);
        using var file = GgufFile.Open(path);
        Assert.Equal(2u, file.Header.Version);
        Assert.Equal(64, file.Header.Alignment);
        Assert.All(file.Header.Tensors, t => Assert.Equal(0, (t.DataOffset - file.Header.DataStart) % 64));
        Assert.Equal([68L, 18, 4], file.Header.Tensors.Skip(1).Select(t => t.ByteLength));
    }

    public static TheoryData<string, string> Malformations => new()
    {
        { "magic", "magic: not a GGUF file" },
        { "version 1", "version: 1 is not supported" },
        { "big-endian", "version: 50331648 reads as a big-endian file" },
        { "truncated header", "metadata 'key': truncated: needs 4 bytes at offset 39, the file has 40" },
        { "header cut before its tensors", "tensor_count: 2 tensors cannot fit in the 24 bytes left of the header" },
        { "huge tensor count", "tensor_count: 1152921504606846976 tensors cannot fit" },
        { "huge metadata count", "metadata_kv_count: 4611686018427387904 metadata entries cannot fit" },
        { "huge string", "metadata[0].key: 9223372036854775807 bytes of string cannot fit" },
        { "huge array", "metadata 'key' count: 1099511627776 elements cannot fit" },
        { "duplicate key", "metadata 'key': duplicate key" },
        { "empty key", "metadata[0].key: is empty" },
        { "unknown value type", "metadata 'key': unknown value type 13" },
        { "nested array", "metadata 'key': arrays of arrays are not supported" },
        { "bool byte", "metadata 'key': boolean byte is 2" },
        { "invalid utf-8", "metadata[0].key: string is not valid UTF-8" },
        { "alignment type", "metadata 'general.alignment': must be a u32, found i32" },
        { "alignment not a power of two", "metadata 'general.alignment': 48 is not a power of two" },
        { "duplicate tensor", "tensors[1] a: duplicate tensor name" },
        { "unsupported type", "tensors[0] a: ggml type Q6_K is not supported (supported: F32, F16, BF16, Q8_0, Q4_0)" },
        { "unknown type", "tensors[0] a: ggml type 99 (unknown) is not supported" },
        { "partial block", "tensors[0] a: rows of 48 values are not whole Q8_0 blocks of 32" },
        { "five dims", "tensors[0] a: 5 dimensions (at most 4)" },
        { "long name", "name is longer than 63 bytes" },
        { "huge dims", "tensors[0] a: dims [4294967296, 4294967296] are too large" },
        { "misaligned offset", "tensors[1] b: offset 20: not a multiple of the alignment 32" },
        { "overlapping offset", "tensors[1] b: offset 0: the previous tensor ends at 12, so this one starts at 32" },
        { "gap", "tensors[1] b: offset 64: the previous tensor ends at 12, so this one starts at 32" },
        { "truncated data", "tensors[1] b: truncated" },
        { "trailing bytes", "data section: 40 bytes after the last tensor and its padding" },
    };

    [Theory]
    [MemberData(nameof(Malformations))]
    public void Malformed_files_are_one_line_errors_naming_the_file_and_field(string malformation, string expected)
    {
        var path = dir.File("bad.gguf");
        File.WriteAllBytes(path, Malformed(malformation));
        var e = Assert.Throws<KilnException>(() => GgufFile.Open(path).Dispose());
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_tiny_or_missing_file_is_an_error_naming_it()
    {
        var tiny = dir.File("tiny.gguf");
        File.WriteAllBytes(tiny, [0x47, 0x47, 0x55, 0x46]);
        Assert.Equal($"{tiny}: header: truncated: the file has 4 bytes, fewer than a GGUF header's 24",
            Assert.Throws<KilnException>(() => GgufFile.Open(tiny)).Message);
        Assert.Contains("file not found", Assert.Throws<KilnException>(() => GgufFile.Open(dir.File("absent.gguf"))).Message);
    }

    private byte[] Malformed(string malformation)
    {
        var two = new[] { Tensor("a", GgmlType.F32, 3), Tensor("b", GgmlType.F32, 3) };
        var key = Metadata(("key", new GgufValue(GgufValueType.UInt32, 1u)));
        var valid = GgufWriter.Bytes(key, two);
        switch (malformation)
        {
            case "magic": return [.. "GGUG"u8, .. valid[4..]];
            case "version 1": return Patch(valid, 4, 1u);
            case "big-endian": return Patch(valid, 4, 0x03000000u);
            case "truncated header": return GgufWriter.Bytes(key, [])[..40];
            case "header cut before its tensors": return valid[..40];
            case "huge tensor count": return Patch(valid, 8, 1UL << 60);
            case "huge metadata count": return Patch(valid, 16, 1UL << 62);
            case "huge string": return Patch(valid, 24, (ulong)long.MaxValue);
            case "huge array": return GgufWriter.Bytes(Metadata(("key", new GgufValue(GgufValueType.Array, new uint[] { 1 }, GgufValueType.UInt32))), two) is var a
                ? Patch(a, 24 + 8 + 3 + 4 + 4, 1UL << 40) : a;
            case "duplicate key": return GgufWriter.Bytes([.. key, .. key], two);
            case "empty key": return GgufWriter.Bytes(Metadata(("", new GgufValue(GgufValueType.UInt32, 1u))), two);
            case "unknown value type": return Patch(valid, 24 + 8 + 3, 13u);
            case "nested array": return GgufWriter.Bytes(Metadata(("key", new GgufValue(GgufValueType.Array, Array.Empty<byte>(), GgufValueType.Array))), two);
            case "bool byte": return GgufWriter.Bytes(Metadata(("key", new GgufValue(GgufValueType.Bool, true))), two) is var b ? Poke(b, 24 + 8 + 3 + 4, 2) : b;
            case "invalid utf-8": return Poke(valid, 24 + 8 + 1, 0xFF);
            case "alignment type": return GgufWriter.Bytes(Metadata((GgufHeader.AlignmentKey, new GgufValue(GgufValueType.Int32, 32))), two);
            case "alignment not a power of two": return GgufWriter.Bytes(Metadata((GgufHeader.AlignmentKey, new GgufValue(GgufValueType.UInt32, 48u))), two);
            case "duplicate tensor": return GgufWriter.Bytes(key, [Tensor("a", GgmlType.F32, 3), Tensor("a", GgmlType.F32, 3)]);
            case "unsupported type": return GgufWriter.Bytes(key, [Tensor("a", GgmlType.Q6_K, 256) with { Bytes = new byte[210] }]);
            case "unknown type": return GgufWriter.Bytes(key, [Tensor("a", (GgmlType)99, 4)]);
            case "partial block": return GgufWriter.Bytes(key, [new GgufTensorData("a", [48], GgmlType.Q8_0, new byte[51])]);
            case "five dims": return GgufWriter.Bytes(key, [new GgufTensorData("a", [1, 1, 1, 1, 1], GgmlType.F32, new byte[4])]);
            case "long name": return GgufWriter.Bytes(key, [Tensor(new string('x', 64), GgmlType.F32, 1)]);
            case "huge dims": return GgufWriter.Bytes(key, [new GgufTensorData("a", [1L << 32, 1L << 32], GgmlType.F32, new byte[4])]);
            case "misaligned offset": return PatchOffsetOfB(valid, 20);
            case "overlapping offset": return PatchOffsetOfB(valid, 0);
            case "gap": return PatchOffsetOfB(valid, 64);
            case "truncated data": return valid[..^24];
            case "trailing bytes": return [.. valid, .. new byte[40]];
            default: throw new ArgumentException(malformation, nameof(malformation));
        }
    }

    // The offset of tensor "b": the last 8 bytes of its info, which ends the header's infos.
    private static byte[] PatchOffsetOfB(byte[] valid, ulong offset)
    {
        var end = 24 + (8 + 3 + 4 + 4) + (8 + 1 + 4 + 8 + 4 + 8) * 2;
        return Patch(valid, end - 8, offset);
    }

    private static byte[] Patch(byte[] bytes, int at, uint value)
    {
        var copy = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] Patch(byte[] bytes, int at, ulong value)
    {
        var copy = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] Poke(byte[] bytes, int at, byte value)
    {
        var copy = (byte[])bytes.Clone();
        copy[at] = value;
        return copy;
    }

    private string Write(List<KeyValuePair<string, GgufValue>> metadata, GgufTensorData[] tensors)
    {
        var path = dir.File($"{Guid.NewGuid():N}.gguf");
        GgufWriter.Write(path, metadata, tensors);
        return path;
    }

    private static List<KeyValuePair<string, GgufValue>> Metadata(params (string Key, GgufValue Value)[] entries) =>
        [.. entries.Select(e => new KeyValuePair<string, GgufValue>(e.Key, e.Value))];

    // A 1-D tensor of `count` values, zero bytes of the type's size.
    private static GgufTensorData Tensor(string name, GgmlType type, long count)
    {
        var bytes = type switch
        {
            GgmlType.F32 => count * 4,
            GgmlType.F16 or GgmlType.BF16 => count * 2,
            GgmlType.Q8_0 => count / 32 * 34,
            GgmlType.Q4_0 => count / 32 * 18,
            _ => count,
        };
        return new GgufTensorData(name, [count], type, new byte[bytes]);
    }
}
