using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Tests.Benchmarks;

public sealed class BenchCommandTests
{
    [Fact]
    public void Json_output_has_every_metric_with_positive_values()
    {
        var result = KilnCli.Run("bench", "--json", "--new-tokens", "4", "--prompt-tokens", "8", "--repeats", "1");

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        string[] positive =
        [
            "prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "peak_rss_bytes", "read_bandwidth_bytes_per_s",
            "weight_bytes_per_token", "decode_bound_tokens_per_s", "decode_fraction_of_bound", "threads", "repeats",
        ];
        foreach (var key in positive)
        {
            Assert.True(root.TryGetProperty(key, out var value), $"missing {key}");
            Assert.True(value.GetDouble() > 0, $"{key} = {value}");
        }
        Assert.Equal((8, 4), (root.GetProperty("prompt_tokens").GetInt32(), root.GetProperty("new_tokens").GetInt32()));
        Assert.Equal("stories260K", root.GetProperty("model").GetString());
        Assert.Equal(1_040_128, root.GetProperty("weight_bytes_per_token").GetInt64());
        Assert.Equal("f32", root.GetProperty("weight_format").GetString());
    }

    [Fact]
    public void A_bf16_model_reports_its_weights_as_bf16_counted_as_stored()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96,
            Vocab: 128, DType.BF16, Seed: 3, TieEmbeddings: true), dir.Path);

        var result = KilnCli.Run("bench", "--json", "--model", dir.Path, "--new-tokens", "2", "--prompt-tokens", "4", "--repeats", "1");

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal("bf16", json.RootElement.GetProperty("weight_format").GetString());
        // Tied: the embedding is read once, whole, as the output head. Matrices 2 bytes an element, norm gains (upcast) 4.
        const long matrices = 128 * 64 + 2 * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 96 * 64);
        const long gains = 2 * 2 * 64 + 64;
        Assert.Equal(matrices * 2 + gains * 4, json.RootElement.GetProperty("weight_bytes_per_token").GetInt64());
    }

    [Fact]
    public void Spinning_on_is_run_and_reported()
    {
        var result = KilnCli.Run("bench", "--json", "--new-tokens", "2", "--prompt-tokens", "4", "--repeats", "1", "--threads", "2", "--spinning", "true");

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.True(json.RootElement.GetProperty("spinning").GetBoolean());
        Assert.True(json.RootElement.GetProperty("decode_tokens_per_s").GetDouble() > 0);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_is_shortened_with_a_warning()
    {
        var result = KilnCli.Run("bench", "--json", "--new-tokens", "2", "--prompt-tokens", "600", "--repeats", "1");

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("warning: prompt_tokens 600", result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal(510, json.RootElement.GetProperty("prompt_tokens").GetInt32());
    }
}
