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
    /// <summary>Standard deviation of linear and embedding weights and of biases (transformers' initializer_range), times the weight scale.</summary>
    public const double InitializerRange = 0.02;

    /// <summary>Norm gains are 1 ± this, times the weight scale.</summary>
    public const double NormSpread = 0.1;

    private const int ChunkElements = 1 << 16;

    /// <summary>The architectures entry of each model type.</summary>
    private static readonly IReadOnlyDictionary<string, string> Architectures = new Dictionary<string, string>
    {
        ["llama"] = "LlamaForCausalLM",
        ["mistral"] = "MistralForCausalLM",
        ["qwen2"] = "Qwen2ForCausalLM",
        ["qwen3"] = "Qwen3ForCausalLM",
    };

    /// <summary>
    /// Writes the checkpoint to <paramref name="outDirectory"/>, which must not exist or be empty. With
    /// <paramref name="sparse"/> every weight is zero and the data section is a sparse region, so
    /// checkpoints of real model sizes (Llama 3 70B: 141 GB) take seconds and no disk: for timing the
    /// pipeline, which reads headers only, not for running the model.
    /// </summary>
    public static void Write(TestModelOptions options, string outDirectory, bool sparse = false)
    {
        options.Validate();
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
            File.WriteAllText(Path.Combine(staging, Checkpoint.ConfigFileName), ConfigJson(options));
            File.WriteAllText(Path.Combine(staging, Checkpoint.GenerationConfigFileName), GenerationConfigJson());
            var weightsPath = Path.Combine(staging, Checkpoint.SingleWeightsFileName);
            if (sparse) WriteZeroWeights(options, weightsPath);
            else WriteWeights(options, weightsPath);
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

    /// <summary>The tensors of a Llama-family checkpoint with these options, in Hugging Face naming.</summary>
    public static IReadOnlyList<SafetensorsEntry> LlamaTensors(TestModelOptions o)
    {
        long h = o.Hidden, d = o.HeadDim, q = o.Heads * d, kv = o.KvHeads * d, i = o.Intermediate, v = o.Vocab;
        var tensors = new List<SafetensorsEntry> { new("model.embed_tokens.weight", o.DType, [v, h]) };
        void Linear(string name, long outFeatures, long inFeatures, bool bias)
        {
            tensors.Add(new(name + ".weight", o.DType, [outFeatures, inFeatures]));
            if (bias) tensors.Add(new(name + ".bias", o.DType, [outFeatures]));
        }
        for (var layer = 0; layer < o.Layers; layer++)
        {
            var p = $"model.layers.{layer}.";
            tensors.Add(new(p + "input_layernorm.weight", o.DType, [h]));
            Linear(p + "self_attn.q_proj", q, h, o.QkvBias);
            Linear(p + "self_attn.k_proj", kv, h, o.QkvBias);
            Linear(p + "self_attn.v_proj", kv, h, o.QkvBias);
            Linear(p + "self_attn.o_proj", h, q, o.OutputBias);
            if (o.QkNorm)
            {
                tensors.Add(new(p + "self_attn.q_norm.weight", o.DType, [d]));
                tensors.Add(new(p + "self_attn.k_norm.weight", o.DType, [d]));
            }
            tensors.Add(new(p + "post_attention_layernorm.weight", o.DType, [h]));
            Linear(p + "mlp.gate_proj", i, h, o.MlpBias);
            Linear(p + "mlp.up_proj", i, h, o.MlpBias);
            Linear(p + "mlp.down_proj", h, i, o.MlpBias);
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
                Fill(chunk, ref random, isNorm, options.WeightScale);
                writer.Write(Encode(chunk, options.DType, bytes));
            }
        }
        writer.Complete();
    }

    private static void WriteZeroWeights(TestModelOptions options, string path)
    {
        using var writer = SafetensorsWriter.Create(path, LlamaTensors(options), new Dictionary<string, string> { ["format"] = "pt" });
        writer.CompleteWithZeros();
    }

    /// <summary>
    /// Norm gains uniform in 1 ± <see cref="NormSpread"/> × scale; other weights and biases uniform with
    /// standard deviation <see cref="InitializerRange"/> × scale.
    /// </summary>
    private static void Fill(Span<float> values, ref SplitMix64 random, bool isNorm, double scale)
    {
        var (center, spread) = isNorm ? (1f, (float)(NormSpread * scale)) : (0f, (float)(InitializerRange * Math.Sqrt(3) * scale));
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
    /// config.json with the keys of the model type's transformers configuration class (LlamaConfig,
    /// MistralConfig, Qwen2Config, Qwen3Config), sorted as transformers writes them.
    /// </summary>
    private static string ConfigJson(TestModelOptions o)
    {
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal);
        void Add(string name, Action<Utf8JsonWriter> value) => fields[name] = json =>
        {
            json.WritePropertyName(name);
            value(json);
        };
        void Float(string name, double value) => Add(name, json => WritePythonFloat(json, value));
        void Int(string name, long value) => Add(name, json => json.WriteNumberValue(value));
        void Bool(string name, bool value) => Add(name, json => json.WriteBooleanValue(value));
        void Text(string name, string value) => Add(name, json => json.WriteStringValue(value));

        Add("architectures", json =>
        {
            json.WriteStartArray();
            json.WriteStringValue(Architectures[o.ModelType]);
            json.WriteEndArray();
        });
        Float("attention_dropout", 0.0);
        Int("bos_token_id", 1);
        Int("eos_token_id", 2);
        Text("hidden_act", "silu");
        Int("hidden_size", o.Hidden);
        Float("initializer_range", InitializerRange * o.WeightScale);
        Int("intermediate_size", o.Intermediate);
        Int("max_position_embeddings", o.MaxPositions);
        Text("model_type", o.ModelType);
        Int("num_attention_heads", o.Heads);
        Int("num_hidden_layers", o.Layers);
        Int("num_key_value_heads", o.KvHeads);
        // transformers' defaults are 1e-6; Llama checkpoints commonly use 1e-5, as the oracle cases do.
        Float("rms_norm_eps", o.ModelType is "qwen2" or "qwen3" ? 1e-6 : 1e-5);
        Float("rope_theta", o.RopeTheta);
        Bool("tie_word_embeddings", o.TieEmbeddings);
        Text("torch_dtype", o.DType switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" });
        Bool("use_cache", true);
        Int("vocab_size", o.Vocab);
        if (o.ModelType != "mistral") Add("rope_scaling", json => WriteRopeScaling(json, o.RopeScaling));
        switch (o.ModelType)
        {
            case "llama":
                Bool("attention_bias", o.AttentionBias);
                Int("head_dim", o.HeadDim);
                Bool("mlp_bias", o.MlpBias);
                Int("pretraining_tp", 1);
                break;
            case "mistral":
                Int("head_dim", o.HeadDim);
                Add("sliding_window", json => { if (o.SlidingWindow is { } w) json.WriteNumberValue(w); else json.WriteNullValue(); });
                break;
            default:
                // Qwen2Config has no head_dim: transformers 4.47 derives hidden/heads, later versions read head_dim when present,
                // so it is written only when asked for. Qwen3Config defaults it to 128 rather than hidden/heads, so it is always written.
                if (o.ModelType == "qwen3" || o.ExplicitHeadDim is not null) Int("head_dim", o.HeadDim);
                if (o.ModelType == "qwen3") Bool("attention_bias", o.AttentionBias);
                Int("max_window_layers", o.Layers);
                Add("sliding_window", json => json.WriteNullValue());
                Bool("use_sliding_window", false);
                break;
        }
        return Json(json =>
        {
            foreach (var write in fields.Values) write(json);
        });
    }

    private static void WriteRopeScaling(Utf8JsonWriter json, TestRopeScaling? scaling)
    {
        if (scaling is null)
        {
            json.WriteNullValue();
            return;
        }
        json.WriteStartObject();
        json.WritePropertyName("factor");
        WritePythonFloat(json, scaling.Factor);
        if (scaling.Type == "llama3")
        {
            json.WritePropertyName("high_freq_factor");
            WritePythonFloat(json, scaling.HighFreqFactor);
            json.WritePropertyName("low_freq_factor");
            WritePythonFloat(json, scaling.LowFreqFactor);
            json.WriteNumber("original_max_position_embeddings", scaling.OriginalMaxPositions);
        }
        json.WriteString("rope_type", scaling.Type);
        json.WriteEndObject();
    }

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
    private static void WritePythonFloat(Utf8JsonWriter json, double value)
    {
        var text = value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? value.ToString("0", CultureInfo.InvariantCulture) + ".0"
            : value.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();
        json.WriteRawValue(text);
    }
}
