using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Weights;

namespace Kiln.Checkpoints;

/// <summary>
/// Writes a Hugging Face checkpoint folder with seeded random weights (<c>kiln testmodel</c>), all from
/// the family's description: config.json as the family's reads write it (<see cref="TestModelConfig"/>),
/// generation_config.json with its special tokens, and model.safetensors with the tensors its weight
/// layout declares. Weights are streamed, so checkpoints of many gigabytes need little memory. The
/// folder is built beside its destination and renamed into place at the end, so a failure leaves
/// nothing half-written.
/// </summary>
public static class RandomCheckpointWriter
{
    /// <summary>Standard deviation of linear and embedding weights and of biases (transformers' initializer_range), times the weight scale.</summary>
    public const double InitializerRange = 0.02;

    /// <summary>Norm gains are 1 ± this, times the weight scale.</summary>
    public const double NormSpread = 0.1;

    private const int ChunkElements = 1 << 16;

    /// <summary>
    /// Writes the checkpoint to <paramref name="outDirectory"/>, which must not exist or be empty. With
    /// <paramref name="sparse"/> every weight is zero and the data section is a sparse region, so
    /// checkpoints of real model sizes (Llama 3 70B: 141 GB) take seconds and no disk: for timing the
    /// pipeline, which reads headers only, not for running the model.
    /// </summary>
    public static void Write(TestModelOptions options, string outDirectory, bool sparse = false)
    {
        var (config, model) = TestModelConfig.Describe(options);
        if (outDirectory.Length == 0) throw new KilnException("output folder: the path is empty");
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDirectory));
        if (File.Exists(target))
        {
            throw new KilnException($"{outDirectory}: output folder: is a file, not a folder");
        }
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new KilnException($"{outDirectory}: output folder: exists and is not empty; refusing to overwrite it");
        }
        var parent = Path.GetDirectoryName(target) ?? throw new KilnException($"{outDirectory}: output folder: cannot write to a root folder");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            File.WriteAllText(Path.Combine(staging, Checkpoint.ConfigFileName), ConfigJson(config, options));
            File.WriteAllText(Path.Combine(staging, Checkpoint.GenerationConfigFileName), GenerationConfigJson(model.Facts));
            var weightsPath = Path.Combine(staging, Checkpoint.SingleWeightsFileName);
            if (sparse) WriteZeroWeights(model.Layout, options.DType, weightsPath);
            else WriteWeights(options, model.Layout, weightsPath);
            if (Directory.Exists(target)) Directory.Delete(target);
            Directory.Move(staging, target);
        }
        catch
        {
            // Best effort: the original failure is the one to report.
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The tensors of the checkpoint these options describe, as the family's weight layout declares them, in file order.</summary>
    public static IReadOnlyList<SafetensorsEntry> Tensors(TestModelOptions options) =>
        Entries(TestModelConfig.Describe(options).Model.Layout, options.DType);

    private static IReadOnlyList<SafetensorsEntry> Entries(WeightLayout layout, DType dtype) =>
        [.. layout.Tensors.Select(t => new SafetensorsEntry(t.Name, dtype, t.Shape))];

    private static void WriteWeights(TestModelOptions options, WeightLayout layout, string path)
    {
        var inits = layout.Tensors.ToDictionary(t => t.Name, t => t.Init, StringComparer.Ordinal);
        using var writer = SafetensorsWriter.Create(path, Entries(layout, options.DType), new Dictionary<string, string> { ["format"] = "pt" });
        var values = new float[ChunkElements];
        var bytes = new byte[ChunkElements * options.DType.ByteSize()];
        foreach (var tensor in writer.Order)
        {
            // One stream per tensor name: values do not depend on the order tensors are written in.
            var random = new SplitMix64(SplitMix64.Derive(options.Seed, tensor.Name));
            var count = tensor.ByteLength / options.DType.ByteSize();
            for (long done = 0; done < count; done += ChunkElements)
            {
                var n = (int)Math.Min(ChunkElements, count - done);
                var chunk = values.AsSpan(0, n);
                Fill(chunk, ref random, inits[tensor.Name], options.WeightScale);
                writer.Write(Encode(chunk, options.DType, bytes));
            }
        }
        writer.Complete();
    }

    private static void WriteZeroWeights(WeightLayout layout, DType dtype, string path)
    {
        using var writer = SafetensorsWriter.Create(path, Entries(layout, dtype), new Dictionary<string, string> { ["format"] = "pt" });
        writer.CompleteWithZeros();
    }

    /// <summary>
    /// Norm gains (<see cref="TensorInit.AroundOne"/>) uniform in 1 ± <see cref="NormSpread"/> × scale; other
    /// weights and biases uniform with standard deviation <see cref="InitializerRange"/> × scale.
    /// </summary>
    private static void Fill(Span<float> values, ref SplitMix64 random, TensorInit init, double scale)
    {
        var (center, spread) = init == TensorInit.AroundOne ? (1f, (float)(NormSpread * scale)) : (0f, (float)(InitializerRange * Math.Sqrt(3) * scale));
        for (var k = 0; k < values.Length; k++) values[k] = center + spread * random.NextSigned();
    }

    private static ReadOnlySpan<byte> Encode(ReadOnlySpan<float> values, DType dtype, byte[] buffer)
    {
        var n = values.Length;
        switch (dtype)
        {
            case DType.F32:
                return MemoryMarshal.AsBytes(values);
            case DType.BF16:
                FloatConversion.SingleToBFloat16(values, MemoryMarshal.Cast<byte, ushort>(buffer.AsSpan(0, 2 * n)));
                return buffer.AsSpan(0, 2 * n);
            default:
                FloatConversion.SingleToHalf(values, MemoryMarshal.Cast<byte, Half>(buffer.AsSpan(0, 2 * n)));
                return buffer.AsSpan(0, 2 * n);
        }
    }

    /// <summary>
    /// config.json as the family's description wrote it, plus how the weights were made (torch_dtype,
    /// initializer_range), with its keys sorted as transformers writes them.
    /// </summary>
    private static string ConfigJson(JsonObject config, TestModelOptions options)
    {
        config["torch_dtype"] = options.DType switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" };
        config["initializer_range"] = InitializerRange * options.WeightScale;
        return Text(config);
    }

    /// <summary>generation_config.json as transformers derives it from the model config: its special tokens.</summary>
    private static string GenerationConfigJson(ModelFacts model)
    {
        var json = new JsonObject { ["_from_model_config"] = true };
        if (model.BosTokenId is { } bos) json["bos_token_id"] = bos;
        if (model.EosTokenIds is [var eos]) json["eos_token_id"] = eos;
        else if (model.EosTokenIds.Length > 1) json["eos_token_id"] = new JsonArray([.. model.EosTokenIds.Select(id => (JsonNode)id)]);
        return Text(json);
    }

    private static string Text(JsonObject json)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n" })) WriteValue(writer, json);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    // Objects with sorted keys and floats as Python writes them, as in a file transformers saved.
    private static void WriteValue(Utf8JsonWriter json, JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                json.WriteStartObject();
                foreach (var (name, value) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    json.WritePropertyName(name);
                    WriteValue(json, value);
                }
                json.WriteEndObject();
                break;
            case JsonArray a:
                json.WriteStartArray();
                foreach (var item in a) WriteValue(json, item);
                json.WriteEndArray();
                break;
            case JsonValue v when v.TryGetValue<double>(out var number):
                WritePythonFloat(json, number);
                break;
            case null:
                json.WriteNullValue();
                break;
            default:
                node.WriteTo(json);
                break;
        }
    }

    /// <summary>Floats as Python's json writes them (10000.0, 1e-05, 0.02), so the file reads like one transformers wrote.</summary>
    private static void WritePythonFloat(Utf8JsonWriter json, double value)
    {
        var text = value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? value.ToString("0", CultureInfo.InvariantCulture) + ".0"
            : value.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();
        json.WriteRawValue(text);
    }
}
