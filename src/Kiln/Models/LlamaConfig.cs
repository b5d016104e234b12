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

    /// <summary>Widths (hidden_size, intermediate_size, heads x head_dim) above this are refused: the largest real models use about 50,000.</summary>
    public const int MaxWidth = 1 << 20;

    /// <summary>vocab_size above this is refused (real vocabularies are up to about 260,000).</summary>
    public const int MaxVocab = 1 << 24;

    /// <summary>num_hidden_layers above this is refused (real models have up to about 130).</summary>
    public const int MaxLayers = 1 << 12;

    /// <summary>Context lengths above this are refused: the graph computes positions in float32, exact only up to 2^24.</summary>
    public const int MaxPositionLimit = 1 << 24;

    /// <summary>
    /// Reads and validates config.json: every field this class reads is checked for its type, its range
    /// and its relations to the others, so no value reaches the graph or ONNX Runtime unchecked. With
    /// these bounds every weight tensor has fewer than 2^45 elements, far inside 64-bit sizes.
    /// </summary>
    public static LlamaConfig Read(ConfigReader config)
    {
        var modelType = config.String("model_type");
        if (!ModelTypes.TryGetValue(modelType, out var variant))
            throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {string.Join(", ", ModelTypes.Keys)})");

        var hiddenAct = config.String("hidden_act", "silu");
        if (hiddenAct != "silu") throw config.Error("hidden_act", $"unsupported activation '{hiddenAct}' (supported: silu)");

        var vocab = config.Int("vocab_size", 1, MaxVocab);
        var hidden = config.Int("hidden_size", 1, MaxWidth);
        var intermediate = config.Int("intermediate_size", 1, MaxWidth);
        var layers = config.Int("num_hidden_layers", 1, MaxLayers);
        var heads = config.Int("num_attention_heads", 1, MaxWidth);
        var kvHeads = config.Has("num_key_value_heads") ? config.Int("num_key_value_heads", 1, MaxWidth) : heads;
        if (heads % kvHeads != 0) throw config.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        // transformers' Qwen3Config defaults head_dim to 128; the others derive it from the hidden size.
        var headDim = config.Has("head_dim") ? config.Int("head_dim", 1, MaxWidth) : variant == LlamaVariant.Qwen3 ? 128 : hidden / heads;
        if (!config.Has("head_dim") && variant != LlamaVariant.Qwen3 && hidden % heads != 0)
            throw config.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        if (headDim % 2 != 0) throw config.Error("head_dim", $"{headDim} is odd; rotary embeddings need an even head dimension");
        if ((long)heads * headDim > MaxWidth)
            throw config.Error("num_attention_heads", $"{heads} heads of {headDim} channels is a width of {(long)heads * headDim}, above the supported maximum of {MaxWidth}");

        // Qwen2 and Qwen3 read sliding_window only when use_sliding_window is set; Mistral always.
        if (variant is LlamaVariant.Qwen2 or LlamaVariant.Qwen3 && config.Bool("use_sliding_window", false))
            throw config.Error("use_sliding_window", "sliding-window layers of Qwen models are not supported");
        // MistralConfig defaults sliding_window to 4096 when the key is absent; an explicit null means none.
        int? window = variant != LlamaVariant.Mistral ? null
            : !config.Json.ContainsKey("sliding_window") ? 4096
            : config.Has("sliding_window") ? config.Int("sliding_window", 1, int.MaxValue) : null;

        var maxPositions = config.Int("max_position_embeddings", 1, MaxPositionLimit, fallback: 2048);
        var bos = config.TokenIds("bos_token_id", vocab);
        if (bos.Length > 1) throw config.Error("bos_token_id", $"expected one token id, got {bos.Length}");

        return new LlamaConfig(
            variant,
            config.Strings("architectures").FirstOrDefault() ?? modelType,
            vocab,
            hidden,
            intermediate,
            layers,
            heads,
            kvHeads,
            headDim,
            config.PositiveFloat32("rms_norm_eps", 1e-6),
            maxPositions,
            config.Bool("tie_word_embeddings", false),
            AttentionBias: variant == LlamaVariant.Qwen2 || (variant != LlamaVariant.Mistral && config.Bool("attention_bias", false)),
            MlpBias: variant == LlamaVariant.Llama && config.Bool("mlp_bias", false),
            QkNorm: variant == LlamaVariant.Qwen3,
            window,
            RopeScaling.Read(config, headDim))
        {
            BosTokenId = bos.Length == 1 ? bos[0] : null,
            EosTokenIds = config.TokenIds("eos_token_id", vocab),
        };
    }

    /// <summary>bos_token_id of config.json, in the vocabulary; null when not given.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>eos_token_id of config.json (an id or a list), each in the vocabulary.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Qwen2 has biases on q, k and v only; Llama's attention_bias also covers o_proj.</summary>
    public bool OutputProjectionBias => AttentionBias && Variant != LlamaVariant.Qwen2;
}
