using System.Text.Json.Nodes;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// The config.json a GGUF file's metadata stands for: the Hugging Face fields Kiln's model definitions
/// read, from llama.cpp's keys (docs/gguf.md has the table), for the <see cref="Architectures"/> read; the
/// values are checked here for their GGUF type and by the model's config validation for their range, so
/// every graph, the stop tokens and the snapshot cache see a GGUF model exactly as its Hugging Face twin.
/// </summary>
public static class GgufConfig
{
    public const string ArchitectureKey = "general.architecture";

    /// <summary>The architectures read, as llama.cpp names them: Llama's family and Gemma.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "gemma"];

    /// <summary>general.architecture of <paramref name="metadata"/>, refused unless one of <see cref="Architectures"/>.</summary>
    public static string Architecture(GgufMetadata metadata)
    {
        var architecture = metadata.String(ArchitectureKey) ?? throw metadata.Error(ArchitectureKey, "is required");
        if (!Architectures.Contains(architecture))
            throw metadata.Error(ArchitectureKey, $"architecture '{GgufText.Show(architecture)}' is not supported (supported: {string.Join(", ", Architectures)})");
        return architecture;
    }

    /// <summary>The config of <paramref name="metadata"/>'s model; <paramref name="tensors"/> are the file's, by Hugging Face name.</summary>
    public static JsonObject Read(GgufMetadata metadata, IReadOnlySet<string> tensors)
    {
        var architecture = Architecture(metadata);
        string Key(string name) => $"{architecture}.{name}";

        long Required(string name) => metadata.Integer(Key(name)) ?? throw metadata.Error(Key(name), "is required");
        if (metadata.Integer(Key("expert_count")) is > 0)
            throw metadata.Error(Key("expert_count"), "mixture-of-experts models are not supported");

        var hidden = Required("embedding_length");
        var heads = Required("attention.head_count");
        var config = new JsonObject
        {
            ["vocab_size"] = VocabSize(metadata, Key("vocab_size")),
            ["hidden_size"] = hidden,
            ["intermediate_size"] = Required("feed_forward_length"),
            ["num_hidden_layers"] = Required("block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = metadata.Integer(Key("attention.head_count_kv")) ?? heads,
            ["max_position_embeddings"] = Required("context_length"),
            ["rms_norm_eps"] = metadata.Number(Key("attention.layer_norm_rms_epsilon")) ?? throw metadata.Error(Key("attention.layer_norm_rms_epsilon"), "is required"),
            ["rope_theta"] = metadata.Number(Key("rope.freq_base")) ?? 10000.0,
            ["rope_scaling"] = RopeScaling(metadata, Key("rope.scaling.type"), Key("rope.scaling.factor")),
            ["tie_word_embeddings"] = !tensors.Contains("lm_head.weight"),
            ["attention_bias"] = tensors.Contains("model.layers.0.self_attn.q_proj.bias"),
        };
        var headDim = HeadDim(metadata, Key("attention.key_length"), Key("attention.value_length"));
        if (architecture == "gemma")
        {
            config["architectures"] = new JsonArray("GemmaForCausalLM");
            config["model_type"] = "gemma";
            // llama.cpp runs Gemma's MLP with the tanh GELU, as transformers' hidden_activation says.
            config["hidden_activation"] = "gelu_pytorch_tanh";
            // Gemma's config defaults head_dim to 256, llama.cpp's to hidden / heads: the config always says it.
            config["head_dim"] = headDim ?? (heads > 0 ? hidden / heads : 0);
        }
        else
        {
            config["architectures"] = new JsonArray("LlamaForCausalLM");
            config["model_type"] = "llama";
            config["hidden_act"] = "silu";
            config["mlp_bias"] = tensors.Contains("model.layers.0.mlp.gate_proj.bias");
            if (headDim is not null) config["head_dim"] = headDim;
        }
        if (TokenId(metadata, "tokenizer.ggml.bos_token_id") is { } bos) config["bos_token_id"] = bos;
        var eos = new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" }
            .Select(key => TokenId(metadata, key)).OfType<long>().Distinct().ToArray();
        if (eos.Length > 0) config["eos_token_id"] = new JsonArray([.. eos.Select(id => (JsonNode)id)]);

        // Kiln's rotary embedding turns every channel of a head; llama.cpp can turn fewer.
        var rotary = Key("rope.dimension_count");
        var headSize = config["head_dim"]?.GetValue<long>() ?? (heads > 0 ? hidden / heads : 0);
        if (metadata.Integer(rotary) is { } turned && turned != headSize)
            throw metadata.Error(rotary, $"{turned} rotary channels of a head of {headSize} is not supported (Kiln turns the whole head)");
        return config;
    }

    // llama.{arch}.vocab_size when written, else the tokenizer's list of tokens.
    private static long VocabSize(GgufMetadata metadata, string key) =>
        metadata.Integer(key) ?? metadata.Strings("tokenizer.ggml.tokens")?.Length
            ?? throw metadata.Error(key, "is required when the file has no tokenizer.ggml.tokens");

    // key_length (the head size of q and k) when written; it must equal value_length, as Kiln's attention assumes.
    private static long? HeadDim(GgufMetadata metadata, string keyLength, string valueLength)
    {
        var (k, v) = (metadata.Integer(keyLength), metadata.Integer(valueLength));
        if (k != v && k is not null && v is not null) throw metadata.Error(valueLength, $"{v} differs from {keyLength} {k}");
        return k ?? v;
    }

    private static JsonNode? RopeScaling(GgufMetadata metadata, string typeKey, string factorKey)
    {
        switch (metadata.String(typeKey))
        {
            case null or "none":
                return null;
            case "linear":
                var factor = metadata.Number(factorKey) ?? throw metadata.Error(factorKey, "is required with linear rope scaling");
                return new JsonObject { ["rope_type"] = "linear", ["factor"] = factor };
            case var other:
                throw metadata.Error(typeKey, $"rope scaling '{GgufText.Show(other)}' is not supported (supported: none, linear)");
        }
    }

    /// <summary>A special token id of the tokenizer metadata; null when absent or written as -1 (llama.cpp's "none").</summary>
    public static long? TokenId(GgufMetadata metadata, string key) => metadata.Integer(key) switch
    {
        null or -1 or uint.MaxValue => null,
        var id => id,
    };
}
