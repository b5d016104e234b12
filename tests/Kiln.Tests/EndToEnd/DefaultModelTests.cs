using System.Text.Json.Nodes;

namespace Kiln.Tests.EndToEnd;

/// <summary>The embedded default model through the real `kiln` command, against its reference outputs.</summary>
public sealed class DefaultModelTests
{
    private static readonly JsonArray Cases =
        JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "expected.json")))!["cases"]!.AsArray();

    public static TheoryData<int> CaseIndexes => new(Enumerable.Range(0, Cases.Count));

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Generate_reproduces_the_reference_greedy_text(int index)
    {
        var expected = Cases[index]!;
        // From a folder other than the repository: the default model ships with the build output.
        using var elsewhere = new TempDir();
        var result = KilnCli.RunIn(elsewhere.Path, "generate", "--prompt", expected["prompt"]!.GetValue<string>(),
            "--max-new-tokens", "64", "--temperature", "0", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);

        var output = JsonNode.Parse(result.Stdout)!;
        Assert.Equal(Ints(expected["input_ids"]!), Ints(output["prompt_ids"]!));
        Assert.Equal(Ints(expected["greedy_new_token_ids"]!), Ints(output["new_ids"]!));
        Assert.Equal(expected["greedy_new_text"]!.GetValue<string>(), output["text"]!.GetValue<string>());
    }

    [Fact]
    public void Generate_json_splits_the_start_and_reports_peak_memory()
    {
        var result = KilnCli.Run("generate", "--prompt-ids", "1", "--max-new-tokens", "2", "--json", "--no-cache");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var output = JsonNode.Parse(result.Stdout)!;
        var timings = output["timings"]!;
        double Ms(string name) => timings[name]!.GetValue<double>();
        foreach (var part in new[] { "pipeline_ms", "weights_ms", "session_ms" }) Assert.True(Ms(part) >= 0, part);
        // The load is exactly its three parts: nothing of the start goes unaccounted.
        Assert.Equal(Ms("load_ms"), Ms("pipeline_ms") + Ms("weights_ms") + Ms("session_ms"), 6);
        // The process holds at least the runtime and ONNX Runtime: more than 20 MB, less than the machine.
        Assert.InRange(output["peak_rss_bytes"]!.GetValue<long>(), 20L << 20, 8L << 30);
    }

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Streamed_text_is_the_reference_full_text(int index)
    {
        var expected = Cases[index]!;
        var result = KilnCli.Run("generate", "--prompt", expected["prompt"]!.GetValue<string>(), "--max-new-tokens", "64");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(expected["full_text"]!.GetValue<string>() + "\n", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Logits_match_the_reference(int index)
    {
        var expected = Cases[index]!;
        var ids = string.Join(" ", Ints(expected["input_ids"]!));
        var result = KilnCli.Run("logits", "--ids", ids, "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);

        var output = JsonNode.Parse(result.Stdout)!;
        var actual = output["last_logits"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        var reference = expected["last_position_logits"]!.AsArray().Select(v => (float)v!.GetValue<double>()).ToArray();
        Assert.Equal(reference.Length, actual.Length);
        Assert.All(actual.Zip(reference), pair => Assert.InRange(pair.First - pair.Second, -1e-4f, 1e-4f));
        Assert.Equal(expected["last_position_argmax"]!.GetValue<int>(), output["argmax"]!.AsArray()[^1]!.GetValue<int>());
    }

    [Fact]
    public void Same_seed_gives_the_same_sampled_text_and_another_seed_differs()
    {
        string Sample(string seed)
        {
            var result = KilnCli.Run("generate", "--prompt", "Once upon a time", "--max-new-tokens", "40",
                "--temperature", "1.0", "--top-k", "40", "--top-p", "0.95", "--seed", seed, "--json");
            Assert.True(result.ExitCode == 0, result.Stderr);
            return JsonNode.Parse(result.Stdout)!["new_ids"]!.ToJsonString();
        }
        Assert.Equal(Sample("7"), Sample("7"));
        Assert.NotEqual(Sample("7"), Sample("8"));
    }

    private static int[] Ints(JsonNode node) => node.AsArray().Select(v => v!.GetValue<int>()).ToArray();
}
