using System.Text.Json.Nodes;
using Kiln.Models;
using Kiln.Models.Llama;

namespace Kiln.Tests.Models;

/// <summary>config.json defaults that differ between families, as transformers' config classes define them.</summary>
public sealed class LlamaConfigTests
{
    private static LlamaConfig Read(string json) => LlamaConfig.Read(new ConfigReader(JsonNode.Parse(json)!.AsObject(), "config.json"));

    private const string Sizes = "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100";

    [Fact]
    public void Qwen3_head_dim_defaults_to_128_others_to_hidden_over_heads()
    {
        Assert.Equal(128, Read($"{{\"model_type\": \"qwen3\", {Sizes}}}").HeadDim);
        Assert.Equal(16, Read($"{{\"model_type\": \"llama\", {Sizes}}}").HeadDim);
    }

    [Fact]
    public void Mistral_sliding_window_defaults_to_4096_and_null_means_none()
    {
        Assert.Equal(4096, Read($"{{\"model_type\": \"mistral\", {Sizes}}}").SlidingWindow);
        Assert.Null(Read($"{{\"model_type\": \"mistral\", \"sliding_window\": null, {Sizes}}}").SlidingWindow);
        Assert.Equal(8, Read($"{{\"model_type\": \"mistral\", \"sliding_window\": 8, {Sizes}}}").SlidingWindow);
        Assert.Null(Read($"{{\"model_type\": \"llama\", \"sliding_window\": 8, {Sizes}}}").SlidingWindow);
    }

    [Fact]
    public void Qwen2_has_qkv_biases_without_an_output_bias()
    {
        var config = Read($"{{\"model_type\": \"qwen2\", {Sizes}}}");
        Assert.True(config.AttentionBias);
        Assert.False(config.OutputProjectionBias);
    }

    private const string Valid = """
        {"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2}
        """;

    private static LlamaConfig ReadWith(string field, string value)
    {
        var json = JsonNode.Parse(Valid)!.AsObject();
        var path = field.Split('.');
        var parent = json;
        if (path.Length == 2)
        {
            parent = JsonNode.Parse("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 128}""")!.AsObject();
            json["rope_scaling"] = parent;
        }
        if (value == "absent") parent.Remove(path[^1]);
        else parent[path[^1]] = JsonNode.Parse(value);
        return LlamaConfig.Read(new ConfigReader(json, "config.json"));
    }

    [Theory]
    [InlineData("num_hidden_layers", "4294967301", "4294967301 does not fit a 32-bit integer")]
    [InlineData("hidden_size", "-4294967232", "does not fit a 32-bit integer")]
    [InlineData("hidden_size", "64.5", "expected an integer")]
    [InlineData("hidden_size", "\"64\"", "expected an integer")]
    [InlineData("hidden_size", "0", "must be positive")]
    [InlineData("hidden_size", "2097152", "above the supported maximum of 1048576")]
    [InlineData("vocab_size", "absent", "is required")]
    [InlineData("vocab_size", "33554432", "above the supported maximum")]
    [InlineData("num_hidden_layers", "5000", "above the supported maximum")]
    [InlineData("num_attention_heads", "6", "6 does not divide hidden_size 64")]
    [InlineData("num_key_value_heads", "3", "3 does not divide num_attention_heads 4")]
    [InlineData("head_dim", "15", "odd")]
    [InlineData("head_dim", "524288", "width of 2097152")]
    [InlineData("rms_norm_eps", "-1e-5", "must be positive")]
    [InlineData("rms_norm_eps", "0", "must be positive")]
    [InlineData("rms_norm_eps", "1e-50", "outside float32's positive range")]
    [InlineData("rms_norm_eps", "1e39", "outside float32's positive range")]
    [InlineData("rms_norm_eps", "\"1e-5\"", "expected a number")]
    [InlineData("rope_theta", "0", "must be positive")]
    [InlineData("max_position_embeddings", "100000000", "above the supported maximum of 16777216")]
    [InlineData("max_position_embeddings", "-1", "must be positive")]
    [InlineData("architectures", "\"LlamaForCausalLM\"", "expected a list of strings")]
    [InlineData("architectures", "[1]", "expected a string")]
    [InlineData("tie_word_embeddings", "\"true\"", "expected true or false")]
    [InlineData("tie_word_embeddings", "1", "expected true or false")]
    [InlineData("attention_bias", "null", "")]
    [InlineData("eos_token_id", "100", "token id 100 is outside the vocabulary (0..99")]
    [InlineData("eos_token_id", "[2, -1]", "token id -1 is outside the vocabulary")]
    [InlineData("eos_token_id", "[2, \"x\"]", "expected an integer")]
    [InlineData("bos_token_id", "[1, 2]", "expected one token id")]
    [InlineData("rope_scaling", "\"linear\"", "expected an object")]
    [InlineData("rope_scaling.factor", "0.5", "must be at least 1")]
    [InlineData("rope_scaling.factor", "absent", "is required")]
    [InlineData("rope_scaling.low_freq_factor", "0", "must be positive")]
    [InlineData("rope_scaling.low_freq_factor", "4.0", "4 must be greater than low_freq_factor 4")]
    [InlineData("rope_scaling.high_freq_factor", "absent", "is required")]
    [InlineData("rope_scaling.original_max_position_embeddings", "0", "must be positive")]
    [InlineData("rope_scaling.original_max_position_embeddings", "-8192", "must be positive")]
    [InlineData("rope_scaling.original_max_position_embeddings", "8192.5", "expected an integer")]
    public void EachFieldIsCheckedForTypeRangeAndRelation(string field, string value, string problem)
    {
        if (problem == "")
        {
            ReadWith(field, value); // null means "use the default"
            return;
        }
        var e = Assert.Throws<KilnException>(() => ReadWith(field, value));
        var named = field == "rope_scaling.low_freq_factor" && problem.Contains("greater") ? "rope_scaling.high_freq_factor"
            : field == "head_dim" && problem.Contains("width") ? "num_attention_heads"
            : field == "num_attention_heads" ? "num_attention_heads" : field;
        Assert.StartsWith($"config.json: {named}", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ValidValuesAreReadAsWritten()
    {
        var config = ReadWith("rope_scaling.factor", "8");
        Assert.Equal(64, config.HiddenSize);
        Assert.Equal(1, config.BosTokenId);
        Assert.Equal([2], config.EosTokenIds);
        Assert.Equal(("llama3", 8.0, 1.0, 4.0, 128), (config.Rope.Type, config.Rope.Factor, config.Rope.LowFreqFactor, config.Rope.HighFreqFactor, config.Rope.OriginalMaxPositions));
        Assert.Equal(64, ReadWith("hidden_size", "64.0").HiddenSize);
    }
}
