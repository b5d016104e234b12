using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using static Kiln.Models.ConfigLimits;

namespace Kiln.Models.Gemma;

/// <summary>
/// The fields of a Gemma config.json that shape the graph, read with the same defaults as Hugging Face
/// transformers' GemmaConfig (4.47).
/// </summary>
public sealed record GemmaConfig(
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
    RopeScaling Rope)
{
    public const string ModelType = "gemma";

    /// <summary>The one activation Gemma's MLP runs: GELU with the tanh approximation.</summary>
    public const string GeluTanh = "gelu_pytorch_tanh";

    /// <summary>
    /// The family's config.json, each field once: read and validated, with what a test checkpoint writes
    /// into it (<c>test:</c>; see <see cref="ConfigReader.ForTestModel"/>).
    /// </summary>
    public static GemmaConfig Read(ConfigReader config)
    {
        var modelType = config.String("model_type", test: TestOption.ModelType);
        if (modelType != ModelType) throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {ModelType})");

        // transformers 4.47 runs hidden_activation (gelu_pytorch_tanh when absent) and ignores hidden_act, which
        // Gemma's own configs set to "gelu"; later versions run hidden_act. Without hidden_activation, hidden_act
        // must be the tanh GELU too, so that every version runs what Kiln runs.
        var activation = config.String("hidden_activation", "", test: TestValue.Fixed(GeluTanh));
        var hiddenAct = config.String("hidden_act", GeluTanh, test: TestValue.Fixed("gelu"));
        if (activation == "" && hiddenAct != GeluTanh)
            throw config.Error("hidden_act", $"unsupported activation '{hiddenAct}' without hidden_activation (supported: {GeluTanh})");
        if (activation is not ("" or GeluTanh))
            throw config.Error("hidden_activation", $"unsupported activation '{activation}' (supported: {GeluTanh})");

        var vocab = config.Int("vocab_size", 1, MaxVocab, test: TestOption.Vocab);
        var hidden = config.Int("hidden_size", 1, MaxWidth, test: TestOption.Hidden);
        var intermediate = config.Int("intermediate_size", 1, MaxWidth, test: TestOption.Intermediate);
        var layers = config.Int("num_hidden_layers", 1, MaxLayers, test: TestOption.Layers);
        var heads = config.Int("num_attention_heads", 1, MaxWidth, test: TestOption.Heads);
        var kvHeads = config.Int("num_key_value_heads", 1, MaxWidth, fallback: heads, test: TestOption.KvHeads);
        if (heads % kvHeads != 0) throw config.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        // GemmaAttention refuses a hidden size the heads do not divide, though head_dim is its own setting (256 by default).
        if (hidden % heads != 0) throw config.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        var headDim = config.Int("head_dim", 1, MaxWidth, fallback: 256, test: TestOption.HeadDim);
        if (headDim % 2 != 0) throw config.Error("head_dim", $"{headDim} is odd; rotary embeddings need an even head dimension");
        if ((long)heads * headDim > MaxWidth)
            throw config.Error("num_attention_heads", $"{heads} heads of {headDim} channels is a width of {(long)heads * headDim}, above the supported maximum of {MaxWidth}");

        var maxPositions = config.Int("max_position_embeddings", 1, ConfigLimits.MaxPositions, fallback: 8192, test: TestOption.MaxPositions);
        var bos = config.TokenIds("bos_token_id", vocab, test: TestValue.Fixed(2));
        if (bos.Length > 1) throw config.Error("bos_token_id", $"expected one token id, got {bos.Length}");
        var architecture = config.Strings("architectures", test: TestValue.Fixed(new JsonArray("GemmaForCausalLM"))).FirstOrDefault() ?? modelType;
        var rmsNormEps = config.PositiveFloat32("rms_norm_eps", 1e-6, test: TestValue.Fixed(1e-6));
        // GemmaConfig ties the output layer to the embedding unless told otherwise.
        var tie = config.Bool("tie_word_embeddings", true, test: TestValue.Fixed(true));
        var attentionBias = config.Bool("attention_bias", false, test: TestOption.AttentionBias);
        // GemmaConfig has no rope_scaling, so a test checkpoint has none (one found in a file is still read).
        var rope = RopeScaling.Read(config, headDim, null);
        var eos = config.TokenIds("eos_token_id", vocab, test: TestValue.Fixed(1));

        config.Unread("attention_dropout", TestValue.Fixed(0.0));
        config.Unread("use_cache", TestValue.Fixed(true));
        config.Unread("pad_token_id", TestValue.Fixed(0));

        return new GemmaConfig(architecture, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, rmsNormEps, maxPositions,
            tie, attentionBias, rope)
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
