using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using static Kiln.Models.ConfigLimits;

namespace Kiln.Models.Gpt2;

/// <summary>
/// The fields of a GPT-2 config.json that shape the graph, read with the defaults of transformers'
/// GPT2Config (whose names differ from Llama's: n_embd, n_layer, n_head, n_inner, n_positions).
/// </summary>
public sealed record Gpt2Config(
    string Architecture,
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int Layers,
    int Heads,
    double LayerNormEps,
    int MaxPositions,
    bool TieWordEmbeddings,
    bool ScaleAttentionWeights,
    bool ScaleByInverseLayer)
{
    public const string ModelType = "gpt2";

    private const string DefaultArchitecture = "GPT2LMHeadModel";

    /// <summary>transformers' tanh GELUs: gelu_new (NewGELUActivation) and gelu_pytorch_tanh compute the same function.</summary>
    private static readonly string[] Activations = ["gelu_new", "gelu_pytorch_tanh"];

    /// <summary>The family's config.json, each field once: read, validated and written for a test checkpoint (see <see cref="ConfigReader.ForTestModel"/>).</summary>
    public static Gpt2Config Read(ConfigReader config)
    {
        var modelType = config.String("model_type", test: TestOption.ModelType);
        if (modelType != ModelType) throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {ModelType})");

        var activation = config.String("activation_function", "gelu_new", test: TestValue.Fixed("gelu_new"));
        if (!Activations.Contains(activation))
            throw config.Error("activation_function", $"unsupported activation '{activation}' (supported: {string.Join(", ", Activations)})");

        var vocab = config.Int("vocab_size", 1, MaxVocab, fallback: 50257, test: TestOption.Vocab);
        var hidden = config.Int("n_embd", 1, MaxWidth, fallback: 768, test: TestOption.Hidden);
        var layers = config.Int("n_layer", 1, MaxLayers, fallback: 12, test: TestOption.Layers);
        var heads = config.Int("n_head", 1, MaxWidth, fallback: 12, test: TestOption.Heads);
        if (hidden % heads != 0) throw config.Error("n_head", $"{heads} does not divide n_embd {hidden}");
        // n_inner null (the default) means 4 x n_embd.
        var intermediate = config.OptionalInt("n_inner", 1, MaxWidth, test: TestOption.Intermediate) ?? 4 * hidden;
        if (intermediate > MaxWidth) throw config.Error("n_inner", $"4 x n_embd = {intermediate} is above the supported maximum of {MaxWidth}");
        var maxPositions = config.Int("n_positions", 1, ConfigLimits.MaxPositions, fallback: 1024, test: TestOption.MaxPositions);
        var eps = config.PositiveFloat32("layer_norm_epsilon", 1e-5, test: TestValue.Fixed(1e-5));

        // GPT2LMHeadModel ties lm_head to wte unless told otherwise; a test checkpoint always ties, as GPT-2 does.
        var tie = config.Bool("tie_word_embeddings", true, test: TestOption.TieEmbeddings with { Value = _ => true });
        var scaleWeights = config.Bool("scale_attn_weights", true, test: TestValue.Fixed(true));
        var scaleByLayer = config.Bool("scale_attn_by_inverse_layer_idx", false, test: TestValue.Fixed(false));
        // Computes the same scores in fp32 (Kiln's compute dtype); it only changes where a 16-bit model rounds.
        config.Bool("reorder_and_upcast_attn", false, test: TestValue.Fixed(false));
        if (config.Bool("add_cross_attention", false, test: TestValue.Fixed(false)))
            throw config.Error("add_cross_attention", "cross-attention (an encoder-decoder GPT-2) is not supported");

        var bos = config.TokenIds("bos_token_id", vocab, test: TestValue.Fixed(vocab - 1));
        if (bos.Length > 1) throw config.Error("bos_token_id", $"expected one token id, got {bos.Length}");
        var eos = config.TokenIds("eos_token_id", vocab, test: TestValue.Fixed(vocab - 1));
        var architecture = config.Strings("architectures", test: TestValue.Fixed(new JsonArray(DefaultArchitecture))).FirstOrDefault() ?? DefaultArchitecture;

        foreach (var dropout in new[] { "attn_pdrop", "embd_pdrop", "resid_pdrop" }) config.Unread(dropout, TestValue.Fixed(0.1));
        config.Unread("initializer_range", TestValue.Fixed(0.02));
        config.Unread("use_cache", TestValue.Fixed(true));

        return new Gpt2Config(architecture, vocab, hidden, intermediate, layers, heads, eps, maxPositions, tie, scaleWeights, scaleByLayer)
        {
            BosTokenId = bos.Length == 1 ? bos[0] : null,
            EosTokenIds = eos,
        };
    }

    public int HeadDim => HiddenSize / Heads;

    /// <summary>bos_token_id of config.json, in the vocabulary; null when not given (GPT2Config's default, 50256, is left to the file).</summary>
    public int? BosTokenId { get; init; }

    /// <summary>eos_token_id of config.json (an id or a list), each in the vocabulary.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
}
