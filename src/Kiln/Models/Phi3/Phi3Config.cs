using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using static Kiln.Models.ConfigLimits;

namespace Kiln.Models.Phi3;

/// <summary>
/// The fields of a Phi-3 config.json that shape the graph, read with the same defaults as Hugging Face
/// transformers' Phi3Config.
/// </summary>
public sealed record Phi3Config(
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
    int? SlidingWindow,
    RopeScaling Rope,
    LongRope? LongRope)
{
    public const string ModelType = "phi3";

    /// <summary>
    /// The family's config.json, each field once: read and validated, with what a test checkpoint writes
    /// into it (<c>test:</c>; see <see cref="ConfigReader.ForTestModel"/>).
    /// </summary>
    public static Phi3Config Read(ConfigReader config)
    {
        var modelType = config.String("model_type", test: TestOption.ModelType);
        if (modelType != ModelType) throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {ModelType})");

        var hiddenAct = config.String("hidden_act", "silu", test: TestValue.Fixed("silu"));
        if (hiddenAct != "silu") throw config.Error("hidden_act", $"unsupported activation '{hiddenAct}' (supported: silu)");

        var vocab = config.Int("vocab_size", 1, MaxVocab, test: TestOption.Vocab);
        var hidden = config.Int("hidden_size", 1, MaxWidth, test: TestOption.Hidden);
        var intermediate = config.Int("intermediate_size", 1, MaxWidth, test: TestOption.Intermediate);
        var layers = config.Int("num_hidden_layers", 1, MaxLayers, test: TestOption.Layers);
        var heads = config.Int("num_attention_heads", 1, MaxWidth, test: TestOption.Heads);
        var kvHeads = config.Int("num_key_value_heads", 1, MaxWidth, fallback: heads, test: TestOption.KvHeads);
        if (heads % kvHeads != 0) throw config.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");

        // Phi3Config has no head_dim; the attention reads one that is present, else hidden / heads.
        var explicitHeadDim = config.OptionalInt("head_dim", 1, MaxWidth, test: TestOption.ExplicitHeadDim);
        if (explicitHeadDim is null && hidden % heads != 0) throw config.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        var headDim = explicitHeadDim ?? hidden / heads;
        if (headDim % 2 != 0) throw config.Error("head_dim", $"{headDim} is odd; rotary embeddings need an even head dimension");
        if ((long)(heads + 2 * kvHeads) * headDim > MaxWidth)
            throw config.Error("num_attention_heads", $"q, k and v of {heads} + 2 x {kvHeads} heads of {headDim} channels are wider than the supported maximum of {MaxWidth}");

        var maxPositions = config.Int("max_position_embeddings", 1, ConfigLimits.MaxPositions, fallback: 4096, test: TestOption.MaxPositions);
        var originalMaxPositions = config.Int("original_max_position_embeddings", 1, ConfigLimits.MaxPositions, fallback: 4096,
            test: TestOption.MaxPositions);
        // Phi-3 masks with sliding_window when it is set (Phi-3-mini-4k: 2047); transformers' default is none.
        var window = config.OptionalInt("sliding_window", 1, int.MaxValue, test: TestOption.SlidingWindow);
        var bos = config.TokenIds("bos_token_id", vocab, test: TestValue.Fixed(1));
        if (bos.Length > 1) throw config.Error("bos_token_id", $"expected one token id, got {bos.Length}");
        var architecture = config.Strings("architectures", test: TestValue.Fixed(new JsonArray("Phi3ForCausalLM"))).FirstOrDefault() ?? modelType;
        var rmsNormEps = config.PositiveFloat32("rms_norm_eps", 1e-5, test: TestValue.Fixed(1e-5));
        var tie = config.Bool("tie_word_embeddings", false, test: TestOption.TieEmbeddings);
        var theta = RopeScaling.ReadTheta(config);
        var longRope = LongRope.Read(config, theta, headDim, maxPositions, originalMaxPositions);
        var eos = config.TokenIds("eos_token_id", vocab, test: TestValue.Fixed(2));

        config.Unread("attention_dropout", TestValue.Fixed(0.0));
        config.Unread("resid_pdrop", TestValue.Fixed(0.0));
        config.Unread("embd_pdrop", TestValue.Fixed(0.0));
        config.Unread("use_cache", TestValue.Fixed(true));

        return new Phi3Config(architecture, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, rmsNormEps, maxPositions, tie, window,
            new RopeScaling(theta, headDim, "default", 1, 0, 0, 0), longRope)
        {
            BosTokenId = bos.Length == 1 ? bos[0] : null,
            EosTokenIds = eos,
        };
    }

    /// <summary>bos_token_id of config.json, in the vocabulary; null when not given.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>eos_token_id of config.json (an id or a list), each in the vocabulary.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
}
