using Kiln.Checkpoints.Gguf;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Tests.Checkpoints.Gguf;

/// <summary>The default model's GGUF, and copies of it with other tensor types, written by the tests.</summary>
public static class GgufModels
{
    /// <summary>models/stories260K-gguf: the default model as llama.cpp's converter wrote it (F32).</summary>
    public static string Stories260K => Path.Combine(TestPaths.RepoRoot, "models", "stories260K-gguf", "stories260K.gguf");

    /// <summary>The metadata and tensors (with their bytes) of a GGUF file.</summary>
    public static (List<KeyValuePair<string, GgufValue>> Metadata, List<GgufTensorData> Tensors) Read(string path)
    {
        using var file = GgufFile.Open(path);
        var tensors = file.Header.Tensors
            .Select(t => new GgufTensorData(t.Name, t.Dims, t.Type, file.Mapping.GetRange(t.DataOffset, (int)t.ByteLength).ToArray()))
            .ToList();
        return ([.. file.Header.Metadata], tensors);
    }

    /// <summary>
    /// Writes a copy of the F32 GGUF <paramref name="source"/> where each tensor has the type <paramref name="typeOf"/>
    /// picks for it: F32 as it is, F16 and BF16 rounded to nearest even, Q8_0 and Q4_0 quantized row by row with
    /// Kiln's own <see cref="BlockQuantizer"/> (int8 and int4_sym).
    /// </summary>
    public static string Convert(string source, string destination, Func<GgufTensorData, GgmlType> typeOf, Func<List<KeyValuePair<string, GgufValue>>, List<KeyValuePair<string, GgufValue>>>? editMetadata = null)
    {
        var (metadata, tensors) = Read(source);
        var converted = tensors.Select(t => Converted(t, typeOf(t))).ToList();
        GgufWriter.Write(destination, editMetadata?.Invoke(metadata) ?? metadata, converted);
        return destination;
    }

    /// <summary>Q8_0 or Q4_0 for every matrix whose rows are whole blocks, except the embedding table; F32 for the rest.</summary>
    public static Func<GgufTensorData, GgmlType> LinearsIn(GgmlType blocks) => t =>
        t.Dims.Length == 2 && t.Dims[0] % QuantSchemes.BlockSize == 0 && t.Name != "token_embd.weight" ? blocks : GgmlType.F32;

    private static GgufTensorData Converted(GgufTensorData tensor, GgmlType type)
    {
        if (tensor.Type != GgmlType.F32) throw new ArgumentException($"{tensor.Name} is {tensor.Type}, not F32", nameof(tensor));
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.Bytes).ToArray();
        byte[] bytes = type switch
        {
            GgmlType.F32 => tensor.Bytes,
            GgmlType.F16 => [.. values.SelectMany(v => BitConverter.GetBytes((Half)v))],
            GgmlType.BF16 => BFloat16(values),
            GgmlType.Q8_0 => Quantize(values, tensor.Dims[0], QuantScheme.Int8),
            GgmlType.Q4_0 => Quantize(values, tensor.Dims[0], QuantScheme.Int4Sym),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
        return tensor with { Type = type, Bytes = bytes };
    }

    private static byte[] BFloat16(float[] values)
    {
        var half = new ushort[values.Length];
        FloatConversion.SingleToBFloat16(values, half);
        return [.. half.SelectMany(BitConverter.GetBytes)];
    }

    private static byte[] Quantize(float[] values, long k, QuantScheme scheme)
    {
        var rowBytes = (int)scheme.RowBytes(k);
        var rows = values.Length / (int)k;
        var packed = new byte[rows * rowBytes];
        for (var r = 0; r < rows; r++) BlockQuantizer.QuantizeRow(values.AsSpan(r * (int)k, (int)k), scheme, packed.AsSpan(r * rowBytes, rowBytes));
        return packed;
    }
}
