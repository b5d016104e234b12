using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Checkpoints;

/// <summary>
/// Writes a Hugging Face checkpoint folder with seeded random weights (<c>kiln testmodel</c>):
/// config.json and generation_config.json as transformers writes them, and model.safetensors with
/// the family's tensor names. Weights are streamed, so checkpoints of many gigabytes need little
/// memory. The folder is built beside its destination and renamed into place at the end, so a
/// failure leaves nothing half-written.
/// </summary>
public static class RandomCheckpointWriter
{
    /// <summary>Standard deviation of linear and embedding weights (transformers' initializer_range).</summary>
    public const double InitializerRange = 0.02;

    /// <summary>Norm gains are 1 ± this.</summary>
    public const double NormSpread = 0.1;

    private const int ChunkElements = 1 << 16;

    /// <summary>Writes the checkpoint to <paramref name="outDirectory"/>, which must not exist or be empty.</summary>
    public static void Write(TestModelOptions options, string outDirectory)
    {
        options.Validate();
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDirectory));
        if (File.Exists(target))
        {
            throw new KilnException($"{outDirectory}: --out: is a file, not a folder");
        }
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new KilnException($"{outDirectory}: --out: folder exists and is not empty; refusing to overwrite it");
        }
        var parent = Path.GetDirectoryName(target) ?? throw new KilnException($"{outDirectory}: --out: cannot write to a root folder");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            File.WriteAllText(Path.Combine(staging, Checkpoint.ConfigFileName), LlamaConfigJson(options));
            File.WriteAllText(Path.Combine(staging, Checkpoint.GenerationConfigFileName), GenerationConfigJson());
            WriteWeights(options, Path.Combine(staging, Checkpoint.SingleWeightsFileName));
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

    /// <summary>The tensors of a Llama checkpoint with these options, in Hugging Face naming.</summary>
    public static IReadOnlyList<SafetensorsEntry> LlamaTensors(TestModelOptions o)
    {
        long h = o.Hidden, q = (long)o.Heads * o.HeadDim, kv = (long)o.KvHeads * o.HeadDim, i = o.Intermediate, v = o.Vocab;
        var tensors = new List<SafetensorsEntry> { new("model.embed_tokens.weight", o.DType, [v, h]) };
        for (var layer = 0; layer < o.Layers; layer++)
        {
            var p = $"model.layers.{layer}.";
            tensors.AddRange(
            [
                new(p + "input_layernorm.weight", o.DType, [h]),
                new(p + "self_attn.q_proj.weight", o.DType, [q, h]),
                new(p + "self_attn.k_proj.weight", o.DType, [kv, h]),
                new(p + "self_attn.v_proj.weight", o.DType, [kv, h]),
                new(p + "self_attn.o_proj.weight", o.DType, [h, q]),
                new(p + "post_attention_layernorm.weight", o.DType, [h]),
                new(p + "mlp.gate_proj.weight", o.DType, [i, h]),
                new(p + "mlp.up_proj.weight", o.DType, [i, h]),
                new(p + "mlp.down_proj.weight", o.DType, [h, i]),
            ]);
        }
        tensors.Add(new("model.norm.weight", o.DType, [h]));
        if (!o.TieEmbeddings) tensors.Add(new("lm_head.weight", o.DType, [v, h]));
        return tensors;
    }

    private static void WriteWeights(TestModelOptions options, string path)
    {
        using var writer = SafetensorsWriter.Create(path, LlamaTensors(options), new Dictionary<string, string> { ["format"] = "pt" });
        var values = new float[ChunkElements];
        var bytes = new byte[ChunkElements * options.DType.ByteSize()];
        foreach (var tensor in writer.Order)
        {
            // One stream per tensor name: values do not depend on the order tensors are written in.
            var random = new SplitMix64(SplitMix64.Derive(options.Seed, tensor.Name));
            var isNorm = tensor.Name.EndsWith("norm.weight", StringComparison.Ordinal);
            var count = tensor.ByteLength / options.DType.ByteSize();
            for (long done = 0; done < count; done += ChunkElements)
            {
                var n = (int)Math.Min(ChunkElements, count - done);
                var chunk = values.AsSpan(0, n);
                Fill(chunk, ref random, isNorm);
                writer.Write(Encode(chunk, options.DType, bytes));
            }
        }
        writer.Complete();
    }

    /// <summary>Norm gains near 1; other weights uniform with standard deviation <see cref="InitializerRange"/>.</summary>
    private static void Fill(Span<float> values, ref SplitMix64 random, bool isNorm)
    {
        var (center, spread) = isNorm ? (1f, (float)NormSpread) : (0f, (float)(InitializerRange * Math.Sqrt(3)));
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

    /// <summary>config.json with the keys and key order (sorted) of transformers' LlamaConfig.</summary>
    private static string LlamaConfigJson(TestModelOptions o) => Json(json =>
    {
        json.WriteStartArray("architectures");
        json.WriteStringValue("LlamaForCausalLM");
        json.WriteEndArray();
        json.WriteBoolean("attention_bias", false);
        WritePythonFloat(json, "attention_dropout", 0.0);
        json.WriteNumber("bos_token_id", 1);
        json.WriteNumber("eos_token_id", 2);
        json.WriteNumber("head_dim", o.HeadDim);
        json.WriteString("hidden_act", "silu");
        json.WriteNumber("hidden_size", o.Hidden);
        WritePythonFloat(json, "initializer_range", InitializerRange);
        json.WriteNumber("intermediate_size", o.Intermediate);
        json.WriteNumber("max_position_embeddings", o.MaxPositions);
        json.WriteBoolean("mlp_bias", false);
        json.WriteString("model_type", "llama");
        json.WriteNumber("num_attention_heads", o.Heads);
        json.WriteNumber("num_hidden_layers", o.Layers);
        json.WriteNumber("num_key_value_heads", o.KvHeads);
        json.WriteNumber("pretraining_tp", 1);
        WritePythonFloat(json, "rms_norm_eps", 1e-5);
        json.WriteNull("rope_scaling");
        WritePythonFloat(json, "rope_theta", o.RopeTheta);
        json.WriteBoolean("tie_word_embeddings", o.TieEmbeddings);
        json.WriteString("torch_dtype", o.DType switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" });
        json.WriteBoolean("use_cache", true);
        json.WriteNumber("vocab_size", o.Vocab);
    });

    private static string GenerationConfigJson() => Json(json =>
    {
        json.WriteBoolean("_from_model_config", true);
        json.WriteNumber("bos_token_id", 1);
        json.WriteNumber("eos_token_id", 2);
    });

    private static string Json(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Floats as Python's json writes them (10000.0, 1e-05, 0.02), so the file reads like one transformers wrote.</summary>
    private static void WritePythonFloat(Utf8JsonWriter json, string name, double value)
    {
        json.WritePropertyName(name);
        var text = value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? value.ToString("0", CultureInfo.InvariantCulture) + ".0"
            : value.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();
        json.WriteRawValue(text);
    }
}
