using System.Buffers.Binary;
using System.Text.Json;
using Kiln.Graph;

namespace Kiln.Checkpoints;

/// <summary>
/// The validated header of a safetensors file: an 8-byte little-endian length N, then N bytes of
/// JSON naming each tensor's dtype, shape and byte range within the data section that follows.
/// </summary>
public sealed record SafetensorsHeader(
    IReadOnlyDictionary<string, TensorInfo> Tensors,
    IReadOnlyDictionary<string, string> Metadata,
    long DataStart)
{
    /// <summary>Headers above this size are refused: a real one is kilobytes, a corrupt length can be anything.</summary>
    public const long MaxLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>Reads and validates the header of <paramref name="stream"/> (positioned anywhere; it is rewound).</summary>
    /// <param name="file">The file's path, used in error messages and stored in each <see cref="TensorInfo"/>.</param>
    public static SafetensorsHeader Read(string file, Stream stream)
    {
        var fileLength = stream.Length;
        if (fileLength < 8)
        {
            throw KilnException.InFile(file, "header length", $"truncated: the file has {fileLength} bytes, fewer than the 8-byte header length");
        }
        stream.Position = 0;
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxLength)
        {
            throw KilnException.InFile(file, "header length", $"{headerLength} bytes is not a plausible header (limit {MaxLength} bytes)");
        }
        if ((long)headerLength > fileLength - 8)
        {
            throw KilnException.InFile(file, "header", $"truncated: the header length says {headerLength} bytes but only {fileLength - 8} follow");
        }
        var json = new byte[headerLength];
        stream.ReadExactly(json);
        var dataStart = 8 + (long)headerLength;
        return Parse(file, json, dataStart, fileLength - dataStart);
    }

    /// <summary>Validates the JSON header of a file whose data section starts at <paramref name="dataStart"/> and holds <paramref name="dataLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(string file, ReadOnlyMemory<byte> json, long dataStart, long dataLength)
    {
        using var document = JsonFile.Parse(file, json, "header");
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw KilnException.InFile(file, "header", $"expected a JSON object, found {document.RootElement.ValueKind}");
        }
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (property.Name == MetadataKey)
            {
                ReadMetadata(file, property.Value, metadata);
                continue;
            }
            // JsonFile.Parse has refused duplicate keys.
            tensors.Add(property.Name, ReadTensor(file, property.Name, property.Value, dataStart, dataLength));
        }
        CheckCoverage(file, tensors.Values, dataStart, dataLength);
        return new SafetensorsHeader(tensors, metadata, dataStart);
    }

    private static void ReadMetadata(string file, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw KilnException.InFile(file, MetadataKey, $"expected an object of strings, found {element.ValueKind}");
        }
        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw KilnException.InFile(file, $"{MetadataKey}.{entry.Name}", $"expected a string, found {entry.Value.ValueKind}");
            }
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ReadTensor(string file, string name, JsonElement element, long dataStart, long dataLength)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw KilnException.InFile(file, name, $"expected an object with dtype, shape and data_offsets, found {element.ValueKind}");
        }
        if (!element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw KilnException.InFile(file, $"{name}.dtype", "missing or not a string");
        }
        var dtypeName = dtypeElement.GetString()!;
        if (!DTypeExtensions.TryParseSafetensors(dtypeName, out var dtype))
        {
            throw KilnException.InFile(file, $"{name}.dtype", $"unknown dtype \"{dtypeName}\"");
        }

        var shape = ReadIntegers(file, name, element, "shape");
        var offsets = ReadIntegers(file, name, element, "data_offsets");
        if (offsets.Length != 2 || offsets[0] > offsets[1])
        {
            throw KilnException.InFile(file, $"{name}.data_offsets", $"expected [begin, end] with begin <= end, found [{string.Join(", ", offsets)}]");
        }
        if (offsets[1] > dataLength)
        {
            throw KilnException.InFile(file, $"{name}.data_offsets", $"[{offsets[0]}, {offsets[1]}] runs past the end of the data section ({dataLength} bytes)");
        }

        var byteLength = offsets[1] - offsets[0];
        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.ByteSize());
        }
        catch (OverflowException)
        {
            throw KilnException.InFile(file, $"{name}.shape", $"[{string.Join(", ", shape)}] is too large");
        }
        if (byteLength != expected)
        {
            throw KilnException.InFile(file, $"{name}.data_offsets",
                $"[{offsets[0]}, {offsets[1]}] holds {byteLength} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected}");
        }
        return new TensorInfo(name, dtype, shape, file, dataStart + offsets[0], byteLength);
    }

    private static long[] ReadIntegers(string file, string name, JsonElement tensor, string field)
    {
        if (!tensor.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw KilnException.InFile(file, $"{name}.{field}", "missing or not an array");
        }
        var values = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
            {
                throw KilnException.InFile(file, $"{name}.{field}", $"expected non-negative integers, found {item.GetRawText()}");
            }
            values[i++] = value;
        }
        return values;
    }

    /// <summary>
    /// As the reference reader requires: sorted by offset, the tensors tile the data section exactly, with
    /// no gap, no overlap and no byte after the last one. A header length that is off by a few bytes
    /// (still valid JSON thanks to padding) shifts every tensor and is caught here.
    /// </summary>
    private static void CheckCoverage(string file, IEnumerable<TensorInfo> tensors, long dataStart, long dataLength)
    {
        long end = 0;
        string? previous = null;
        foreach (var tensor in tensors.OrderBy(t => t.DataOffset).ThenBy(t => t.ByteLength))
        {
            var begin = tensor.DataOffset - dataStart;
            if (begin != end)
            {
                var after = previous is null ? "the start of the data section" : $"the end of tensor {previous} at {end}";
                var problem = begin > end ? $"leaves a gap of {begin - end} bytes after {after}" : $"overlaps tensor {previous}";
                throw KilnException.InFile(file, $"{tensor.Name}.data_offsets", $"starts at {begin}: {problem}");
            }
            end = begin + tensor.ByteLength;
            previous = tensor.Name;
        }
        if (end != dataLength)
        {
            throw KilnException.InFile(file, "data section",
                $"{dataLength - end} bytes after the last tensor (the tensors cover {end} of {dataLength} bytes; is the header length right?)");
        }
    }
}
