using System.Text.Json.Nodes;
using Kiln.Models;

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
}
