namespace Kiln.Models;

/// <summary>Which member of the Llama family a config.json describes; each changes a few details.</summary>
public enum LlamaVariant { Llama, Mistral, Qwen2, Qwen3 }

/// <summary>
/// The fields of a Llama-family config.json that shape the graph, read with the same defaults as
/// Hugging Face transformers' configuration classes.
/// </summary>
public sealed record LlamaConfig(
    LlamaVariant Variant,
    string Architecture,
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int Layers,
    int Heads,
    int KvHeads,
    int HeadDim,
    double RmsNormEps,
    int MaxPositions,
    bool TieWordEmbeddings,
    bool AttentionBias,
    bool MlpBias,
    bool QkNorm,
    int? SlidingWindow,
    RopeScaling Rope)
{
    public static readonly IReadOnlyDictionary<string, LlamaVariant> ModelTypes = new Dictionary<string, LlamaVariant>
    {
        ["llama"] = LlamaVariant.Llama,
        ["mistral"] = LlamaVariant.Mistral,
        ["qwen2"] = LlamaVariant.Qwen2,
        ["qwen3"] = LlamaVariant.Qwen3,
    };

    public static LlamaConfig Read(ConfigReader config)
    {
        var modelType = config.String("model_type");
        if (!ModelTypes.TryGetValue(modelType, out var variant))
            throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {string.Join(", ", ModelTypes.Keys)})");

        var hiddenAct = config.String("hidden_act", "silu");
        if (hiddenAct != "silu") throw config.Error("hidden_act", $"unsupported activation '{hiddenAct}' (supported: silu)");

        var hidden = Positive(config, "hidden_size");
        var heads = Positive(config, "num_attention_heads");
        var kvHeads = config.Has("num_key_value_heads") ? Positive(config, "num_key_value_heads") : heads;
        if (heads % kvHeads != 0) throw config.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        // transformers' Qwen3Config defaults head_dim to 128; the others derive it from the hidden size.
        var headDim = config.Has("head_dim") ? Positive(config, "head_dim") : variant == LlamaVariant.Qwen3 ? 128 : hidden / heads;
        if (!config.Has("head_dim") && variant != LlamaVariant.Qwen3 && hidden % heads != 0)
            throw config.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        if (headDim % 2 != 0) throw config.Error("head_dim", $"{headDim} is odd; rotary embeddings need an even head dimension");

        // Qwen2 and Qwen3 read sliding_window only when use_sliding_window is set; Mistral always.
        if (variant is LlamaVariant.Qwen2 or LlamaVariant.Qwen3 && config.Bool("use_sliding_window", false))
            throw config.Error("use_sliding_window", "sliding-window layers of Qwen models are not supported");
        // MistralConfig defaults sliding_window to 4096 when the key is absent; an explicit null means none.
        int? window = variant != LlamaVariant.Mistral ? null
            : !config.Json.ContainsKey("sliding_window") ? 4096
            : config.Has("sliding_window") ? Positive(config, "sliding_window") : null;

        var architectures = config.Json["architectures"]?.AsArray().Select(a => a?.GetValue<string>()).ToArray() ?? [];
        return new LlamaConfig(
            variant,
            architectures.FirstOrDefault() ?? modelType,
            Positive(config, "vocab_size"),
            hidden,
            Positive(config, "intermediate_size"),
            Positive(config, "num_hidden_layers"),
            heads,
            kvHeads,
            headDim,
            config.Double("rms_norm_eps", 1e-6),
            Positive(config, "max_position_embeddings", 2048),
            config.Bool("tie_word_embeddings", false),
            AttentionBias: variant == LlamaVariant.Qwen2 || (variant != LlamaVariant.Mistral && config.Bool("attention_bias", false)),
            MlpBias: variant == LlamaVariant.Llama && config.Bool("mlp_bias", false),
            QkNorm: variant == LlamaVariant.Qwen3,
            window,
            RopeScaling.Read(config, headDim));
    }

    /// <summary>Qwen2 has biases on q, k and v only; Llama's attention_bias also covers o_proj.</summary>
    public bool OutputProjectionBias => AttentionBias && Variant != LlamaVariant.Qwen2;

    private static int Positive(ConfigReader config, string field, int? fallback = null)
    {
        var value = config.Int(field, fallback);
        return value > 0 ? value : throw config.Error(field, $"must be positive, got {value}");
    }
}
