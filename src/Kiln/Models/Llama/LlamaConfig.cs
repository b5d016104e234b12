using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using static Kiln.Models.ConfigLimits;

namespace Kiln.Models.Llama;

/// <summary>Which member of the Llama family a config.json describes; each changes a few details.</summary>
public enum LlamaVariant { Llama, Mistral, Qwen2, Qwen3 }

/// <summary>
/// The fields of a Llama-family config.json that shape the graph, read with the same defaults as
/// Hugging Face transformers' configuration classes (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config).
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
    /// <summary>Each model_type of the family, with its variant and the architecture transformers names for it.</summary>
    private static readonly Dictionary<string, (LlamaVariant Variant, string Architecture)> Members = new()
    {
        ["llama"] = (LlamaVariant.Llama, "LlamaForCausalLM"),
        ["mistral"] = (LlamaVariant.Mistral, "MistralForCausalLM"),
        ["qwen2"] = (LlamaVariant.Qwen2, "Qwen2ForCausalLM"),
        ["qwen3"] = (LlamaVariant.Qwen3, "Qwen3ForCausalLM"),
    };

    public static IReadOnlyList<string> ModelTypes { get; } = [.. Members.Keys];

    /// <summary>
    /// The family's config.json, each field once: read and validated (type, range and relations to the
    /// others, so no value reaches the graph or ONNX Runtime unchecked), with what a test checkpoint
    /// writes into it (<c>test:</c>; see <see cref="ConfigReader.ForTestModel"/>). Which model type has
    /// which setting is said here and nowhere else.
    /// </summary>
    public static LlamaConfig Read(ConfigReader config)
    {
        var modelType = config.String("model_type", test: TestOption.ModelType);
        if (!Members.TryGetValue(modelType, out var member))
            throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {string.Join(", ", ModelTypes)})");
        var variant = member.Variant;
        var qwen = variant is LlamaVariant.Qwen2 or LlamaVariant.Qwen3;

        var hiddenAct = config.String("hidden_act", "silu", test: TestValue.Fixed("silu"));
        if (hiddenAct != "silu") throw config.Error("hidden_act", $"unsupported activation '{hiddenAct}' (supported: silu)");

        var vocab = config.Int("vocab_size", 1, MaxVocab, test: TestOption.Vocab);
        var hidden = config.Int("hidden_size", 1, MaxWidth, test: TestOption.Hidden);
        var intermediate = config.Int("intermediate_size", 1, MaxWidth, test: TestOption.Intermediate);
        var layers = config.Int("num_hidden_layers", 1, MaxLayers, test: TestOption.Layers);
        var heads = config.Int("num_attention_heads", 1, MaxWidth, test: TestOption.Heads);
        var kvHeads = config.Int("num_key_value_heads", 1, MaxWidth, fallback: heads, test: TestOption.KvHeads);
        if (heads % kvHeads != 0) throw config.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");

        // transformers' Qwen3Config defaults head_dim to 128; the others derive it from the hidden size. Qwen2Config
        // has no head_dim (transformers 4.47 derives it; later versions read one that is present): written only when asked for.
        var explicitHeadDim = config.OptionalInt("head_dim", 1, MaxWidth,
            test: variant == LlamaVariant.Qwen2 ? TestOption.ExplicitHeadDim : TestOption.HeadDim);
        var headDim = explicitHeadDim ?? (variant == LlamaVariant.Qwen3 ? 128 : hidden / heads);
        if (explicitHeadDim is null && variant != LlamaVariant.Qwen3 && hidden % heads != 0)
            throw config.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        if (headDim % 2 != 0) throw config.Error("head_dim", $"{headDim} is odd; rotary embeddings need an even head dimension");
        if ((long)heads * headDim > MaxWidth)
            throw config.Error("num_attention_heads", $"{heads} heads of {headDim} channels is a width of {(long)heads * headDim}, above the supported maximum of {MaxWidth}");

        // Qwen2 and Qwen3 read sliding_window only when use_sliding_window is set; Mistral always.
        if (qwen)
        {
            if (config.Bool("use_sliding_window", false, test: TestValue.Fixed(false)))
                throw config.Error("use_sliding_window", "sliding-window layers of Qwen models are not supported");
            config.Unread("sliding_window", TestValue.Fixed(null));
            config.Unread("max_window_layers", TestValue.Fixed(layers));
        }
        // MistralConfig defaults sliding_window to 4096 when the key is absent; an explicit null means none.
        var window = variant == LlamaVariant.Mistral
            ? config.OptionalInt("sliding_window", 1, int.MaxValue, absent: 4096, test: TestOption.SlidingWindow)
            : null;

        var maxPositions = config.Int("max_position_embeddings", 1, ConfigLimits.MaxPositions, fallback: 2048, test: TestOption.MaxPositions);
        var bos = config.TokenIds("bos_token_id", vocab, test: TestValue.Fixed(1));
        if (bos.Length > 1) throw config.Error("bos_token_id", $"expected one token id, got {bos.Length}");
        var architecture = config.Strings("architectures", test: TestValue.Fixed(new JsonArray(member.Architecture))).FirstOrDefault() ?? modelType;
        // transformers' default is 1e-6; Llama checkpoints commonly use 1e-5, as the oracle cases do.
        var rmsNormEps = config.PositiveFloat32("rms_norm_eps", 1e-6, test: TestValue.Fixed(qwen ? 1e-6 : 1e-5));
        var tie = config.Bool("tie_word_embeddings", false, test: TestOption.TieEmbeddings);
        // Qwen2 always has q/k/v biases and no setting; Llama's and Qwen3's attention_bias covers q, k, v and o; Mistral has none.
        var attentionBias = variant == LlamaVariant.Qwen2
            || (variant is LlamaVariant.Llama or LlamaVariant.Qwen3 && config.Bool("attention_bias", false, test: TestOption.AttentionBias));
        var mlpBias = variant == LlamaVariant.Llama && config.Bool("mlp_bias", false, test: TestOption.MlpBias);
        // MistralConfig has no rope_scaling, so a test checkpoint of it has none (one found in a file is still read).
        var rope = RopeScaling.Read(config, headDim, variant == LlamaVariant.Mistral ? null : TestOption.RopeScaling);
        var eos = config.TokenIds("eos_token_id", vocab, test: TestValue.Fixed(2));

        config.Unread("attention_dropout", TestValue.Fixed(0.0));
        config.Unread("use_cache", TestValue.Fixed(true));
        if (variant == LlamaVariant.Llama) config.Unread("pretraining_tp", TestValue.Fixed(1));

        return new LlamaConfig(variant, architecture, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, rmsNormEps, maxPositions,
            tie, attentionBias, mlpBias, QkNorm: variant == LlamaVariant.Qwen3, window, rope)
        {
            BosTokenId = bos.Length == 1 ? bos[0] : null,
            EosTokenIds = eos,
        };
    }

    /// <summary>bos_token_id of config.json, in the vocabulary; null when not given.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>eos_token_id of config.json (an id or a list), each in the vocabulary.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Qwen2 has biases on q, k and v only; Llama's attention_bias also covers o_proj.</summary>
    public bool OutputProjectionBias => AttentionBias && Variant != LlamaVariant.Qwen2;
}
