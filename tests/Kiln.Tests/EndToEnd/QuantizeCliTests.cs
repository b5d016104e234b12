using System.Text.Json.Nodes;

namespace Kiln.Tests.EndToEnd;

/// <summary>`--quantize` on the commands that compile a model, through the real `kiln` process.</summary>
public sealed class QuantizeCliTests
{
    [Theory]
    [InlineData("int8")]
    [InlineData("int4")]
    public void Compile_reports_the_quantized_products(string scheme)
    {
        var result = KilnCli.Run("compile", "--quantize", scheme, "--json", "--no-cache");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        Assert.Equal(21, json["ops"]!["quantized_linear"]!.GetValue<int>());
        Assert.Null(json["ops"]!["kiln_linear"]);
        Assert.Contains(json["transforms"]!.AsArray(), t => t!["name"]!.GetValue<string>() == "quantize_weights" && t["matches"]!.GetValue<int>() == 21);
    }

    [Fact]
    public void Logits_with_none_are_the_default_logits_and_with_int8_those_of_the_setting_from_set_or_a_pipeline_file()
    {
        string[] logits = ["logits", "--ids", "1 403 407 300", "--json", "--threads", "1", "--no-cache"];
        var plain = KilnCli.Run(logits);
        Assert.Equal(plain.Stdout, KilnCli.Run([.. logits, "--quantize", "none"]).Stdout);
        var quantized = KilnCli.Run([.. logits, "--quantize", "int8"]);
        Assert.True(quantized.ExitCode == 0, quantized.Stderr);
        Assert.NotEqual(plain.Stdout, quantized.Stdout);
        Assert.Equal(quantized.Stdout, KilnCli.Run([.. logits, "--set", "quantize_weights.scheme=int8"]).Stdout);
        using var dir = new TempDir();
        var pipeline = dir.File("int8.yaml");
        File.WriteAllText(pipeline, File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "src", "Kiln", "Transforms", "default-pipeline.yaml"))
            .Replace("scheme: none", "scheme: int8", StringComparison.Ordinal));
        Assert.Equal(quantized.Stdout, KilnCli.Run([.. logits, "--pipeline", pipeline]).Stdout);
        // --quantize wins over a --set of the same setting.
        Assert.Equal(quantized.Stdout, KilnCli.Run([.. logits, "--set", "quantize_weights.scheme=int4", "--quantize", "int8"]).Stdout);
    }

    [Fact]
    public void Generate_and_bench_run_quantized()
    {
        var generate = KilnCli.Run("generate", "--prompt", "Once upon a time", "--max-new-tokens", "8", "--quantize", "int4", "--json", "--no-cache");
        Assert.True(generate.ExitCode == 0, generate.Stderr);
        Assert.Equal(8, JsonNode.Parse(generate.Stdout)!["new_ids"]!.AsArray().Count);
        var bench = KilnCli.Run("bench", "--prompt-tokens", "4", "--new-tokens", "4", "--repeats", "1", "--quantize", "int8", "--json");
        Assert.True(bench.ExitCode == 0, bench.Stderr);
        Assert.True(JsonNode.Parse(bench.Stdout)!["decode_tokens_per_s"]!.GetValue<double>() > 0);
    }

    [Theory]
    [InlineData("--quantize", "int3", "int3")]
    [InlineData("--set", "quantize_weights.scheme=int3", "quantize_weights.scheme: 'int3' is not one of none, int8, int4, int4_sym")]
    [InlineData("--set", "quantize_weights.embedding=true", "quantize_weights.embedding: quantizing the embedding table is not supported")]
    public void A_bad_value_is_a_one_line_user_error(string option, string value, string mention)
    {
        var result = KilnCli.Run("logits", "--ids", "1 2", "--no-cache", option, value);
        Assert.Equal(2, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("kiln: cache ", StringComparison.Ordinal)).ToArray();
        Assert.True(lines.Length == 1, result.Stderr);
        Assert.StartsWith("kiln: error: ", lines[0]);
        Assert.Contains(mention, lines[0]);
    }
}
