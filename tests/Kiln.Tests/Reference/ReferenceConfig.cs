using System.Text.Json.Nodes;

namespace Kiln.Tests.Reference;

/// <summary>
/// The settings of a Llama-family config.json that <see cref="LlamaReference"/> needs, read here
/// rather than through Kiln's LlamaConfig so the reference stays independent. Defaults and
/// per-model-type rules follow transformers' configuration and modeling classes:
/// <list type="bullet">
/// <item>llama (LlamaConfig): attention_bias puts biases on q, k, v and o; mlp_bias on gate, up and down.</item>
/// <item>mistral (MistralConfig): no biases; sliding_window defaults to 4096 when the key is absent, null means none.</item>
/// <item>qwen2 (Qwen2Attention): q, k and v always have biases, o never; the window applies only with use_sliding_window.</item>
/// <item>qwen3 (Qwen3Config, Qwen3Attention): head_dim defaults to 128, not hidden/heads; attention_bias covers q, k, v and o;
/// q_norm and k_norm normalize every head.</item>
/// </list>
/// </summary>
public sealed record ReferenceConfig(
    string ModelType, int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int HeadDim,
    double RmsNormEps, bool TieEmbeddings, bool QkvBias, bool OutputBias, bool MlpBias, bool QkNorm, int? SlidingWindow,
    double RopeTheta, ReferenceRopeScaling? RopeScaling)
{
    public static ReferenceConfig Read(JsonObject json)
    {
        var modelType = json["model_type"]!.GetValue<string>();
        if (modelType is not ("llama" or "mistral" or "qwen2" or "qwen3"))
            throw new NotSupportedException($"model_type {modelType}");
        if (Get(json, "hidden_act", "silu") != "silu") throw new NotSupportedException("hidden_act");

        var hidden = json["hidden_size"]!.GetValue<int>();
        var heads = json["num_attention_heads"]!.GetValue<int>();
        var headDim = json["head_dim"]?.GetValue<int>() ?? (modelType == "qwen3" ? 128 : hidden / heads);
        var attentionBias = Get(json, "attention_bias", false);
        var isQwen = modelType is "qwen2" or "qwen3";
        if (isQwen && Get(json, "use_sliding_window", false)) throw new NotSupportedException("use_sliding_window");
        int? window = modelType != "mistral" ? null
            : json.ContainsKey("sliding_window") ? json["sliding_window"]?.GetValue<int>() : 4096;

        return new ReferenceConfig(
            modelType,
            json["vocab_size"]!.GetValue<int>(),
            hidden,
            json["intermediate_size"]!.GetValue<int>(),
            json["num_hidden_layers"]!.GetValue<int>(),
            heads,
            json["num_key_value_heads"]?.GetValue<int>() ?? heads,
            headDim,
            Get(json, "rms_norm_eps", 1e-6),
            Get(json, "tie_word_embeddings", false),
            QkvBias: modelType == "qwen2" || (modelType is "llama" or "qwen3" && attentionBias),
            OutputBias: modelType is "llama" or "qwen3" && attentionBias,
            MlpBias: modelType == "llama" && Get(json, "mlp_bias", false),
            QkNorm: modelType == "qwen3",
            window,
            Get(json, "rope_theta", 10000.0),
            ReferenceRopeScaling.Read(json["rope_scaling"] as JsonObject));
    }

    private static T Get<T>(JsonObject json, string key, T fallback) => json[key] is { } node ? node.GetValue<T>() : fallback;
}
