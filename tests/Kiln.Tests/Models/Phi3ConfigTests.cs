using System.Text.Json.Nodes;
using Kiln.Models;
using Kiln.Models.Phi3;

namespace Kiln.Tests.Models;

/// <summary>Phi-3's config.json: LongRoPE as transformers computes it, and one-line errors for what Kiln does not run.</summary>
public sealed class Phi3ConfigTests
{
    // head_dim 8: four rotated pairs.
    private const string Valid = """
        {"model_type": "phi3", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024, "original_max_position_embeddings": 256,
         "rope_theta": 10000.0}
        """;

    private static Phi3Config Read(Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(Valid)!.AsObject();
        edit(json);
        return Phi3Config.Read(new ConfigReader(json, "config.json"));
    }

    private static JsonObject LongRope(params (string Key, JsonNode? Value)[] extra)
    {
        var scaling = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0, 2.0, 3.0, 4.0), ["long_factor"] = new JsonArray(5.0, 6.0, 7.0, 8.0) };
        foreach (var (key, value) in extra) scaling[key] = value;
        return scaling;
    }

    [Fact]
    public void LongRope_frequencies_and_attention_factor_are_transformers()
    {
        var rope = Read(json => json["rope_scaling"] = LongRope()).LongRope!;
        // 1 / (factor_i * 10000^(2i / 8)): theta^(2i/8) is 1, 10, 100, 1000.
        AssertClose([1f, 1 / 20f, 1 / 300f, 1 / 4000f], rope.ShortInverseFrequencies());
        AssertClose([1 / 5f, 1 / 60f, 1 / 700f, 1 / 8000f], rope.LongInverseFrequencies());
        Assert.Equal(256, rope.OriginalMaxPositions);
        // sqrt(1 + ln(1024 / 256) / ln(256)) = sqrt(1 + 2 ln 2 / 8 ln 2) = sqrt(1.25).
        Assert.Equal(Math.Sqrt(1.25), rope.AttentionFactor, 12);
    }

    [Fact]
    public void LongRope_attention_factor_is_one_without_a_longer_context_and_read_when_given()
    {
        Assert.Equal(1.0, Read(json => { json["rope_scaling"] = LongRope(); json["max_position_embeddings"] = 256; }).LongRope!.AttentionFactor);
        Assert.Equal(1.5, Read(json => json["rope_scaling"] = LongRope(("attention_factor", 1.5))).LongRope!.AttentionFactor);
    }

    [Fact]
    public void No_rope_scaling_or_the_default_type_is_plain_rope()
    {
        Assert.Null(Read(_ => { }).LongRope);
        Assert.Null(Read(json => json["rope_scaling"] = new JsonObject { ["rope_type"] = "default" }).LongRope);
    }

    [Theory]
    [InlineData("type", "\"su\"", "config.json: rope_scaling.type: unsupported rope scaling 'su' (supported: longrope)")]
    [InlineData("type", "\"linear\"", "rope_scaling.type: unsupported rope scaling 'linear' (supported: longrope)")]
    [InlineData("rope_type", "\"yarn\"", "rope_scaling.rope_type: unsupported rope scaling 'yarn' (supported: longrope)")]
    [InlineData("short_factor", "[1.0, 2.0]", "rope_scaling.short_factor: has 2 numbers; head_dim 8 needs 4")]
    [InlineData("long_factor", "absent", "rope_scaling.long_factor: has 0 numbers; head_dim 8 needs 4")]
    [InlineData("long_factor", "[1.0, 2.0, -3.0, 4.0]", "rope_scaling.long_factor[2]: must be a positive float32")]
    [InlineData("short_factor", "[1.0, \"2\", 3.0, 4.0]", "rope_scaling.short_factor[1]: expected a number")]
    [InlineData("attention_factor", "0", "rope_scaling.attention_factor: must be positive")]
    public void Unsupported_or_malformed_rope_scaling_is_a_one_line_error_naming_the_field(string field, string value, string message)
    {
        var error = Assert.Throws<KilnException>(() => Read(json =>
        {
            var scaling = LongRope();
            if (field is "type" or "rope_type") scaling.Remove("type");
            if (value == "absent") scaling.Remove(field);
            else scaling[field] = JsonNode.Parse(value);
            json["rope_scaling"] = scaling;
        }));
        Assert.Contains(message, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act: unsupported activation 'gelu' (supported: silu)")]
    [InlineData("partial_rotary_factor", "0.75", "partial_rotary_factor: partial rotary embeddings are not supported")]
    [InlineData("model_type", "\"phi\"", "model_type: unsupported model type 'phi' (supported: phi3)")]
    [InlineData("num_key_value_heads", "3", "3 does not divide num_attention_heads 4")]
    public void Unsupported_settings_are_one_line_errors_naming_the_field(string field, string value, string message)
    {
        var error = Assert.Throws<KilnException>(() => Read(json => json[field] = JsonNode.Parse(value)));
        Assert.Contains(message, error.Message);
        Assert.Contains("config.json", error.Message);
    }

    [Fact]
    public void An_unknown_model_type_lists_phi3_among_the_supported()
    {
        var json = JsonNode.Parse(Valid)!.AsObject();
        json["model_type"] = "phi";
        var error = Assert.Throws<KilnException>(() => ModelFactory.Read(json, "config.json"));
        Assert.Contains("phi3", error.Message);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6f * expected[i], $"[{i}]: {actual[i]} != {expected[i]}");
    }
}
