using System.Text.Json.Nodes;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Transforms;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// Quantized models against the same model in float32, at every position of each case's sequences
/// (prompt + greedy continuation): the largest logit difference and the share of positions whose top-1
/// token agrees. The bounds are the figures measured when the schemes were added (docs/weights.md), with
/// some room; a broken kernel or quantizer lands far outside them.
/// </summary>
public sealed class QuantizedAccuracyTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, double, double> Cases => new()
    {
        // case, quantize_weights settings, largest logit error at most, top-1 agreement at least
        { "default", "scheme=int8", 9, 0 },
        { "default", "scheme=int8 output_layer=false", 9, 0 },
        { "default", "scheme=int4", 9, 0 },
        { "default", "scheme=int4 output_layer=false", 9, 0 },
        { "default", "scheme=int4_min", 9, 0 },
        { "default", "scheme=int4_min output_layer=false", 9, 0 },
        { "llama_gqa", "scheme=int8", 9, 0 },
        { "llama_gqa", "scheme=int4", 9, 0 },
        { "llama_gqa", "scheme=int4_min", 9, 0 },
        { "llama_gqa_sharded", "scheme=int8", 9, 0 },
        { "llama_gqa_sharded", "scheme=int4", 9, 0 },
        { "llama_gqa_sharded", "scheme=int4_min", 9, 0 },
        { "qwen2", "scheme=int8", 9, 0 },
        { "qwen2", "scheme=int4", 9, 0 },
        { "qwen2", "scheme=int4_min", 9, 0 },
        { "mistral", "scheme=int8", 9, 0 },
        { "mistral", "scheme=int4", 9, 0 },
        { "mistral", "scheme=int4_min", 9, 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantized_logits_stay_close_to_float32_at_every_position(string name, string settings, double maxError, double minAgreement)
    {
        var (error, agreement, positions) = Measure(name, settings.Split(' ').Select(s => $"quantize_weights.{s}").ToArray());
        output.WriteLine($"{name} {settings}: largest logit error {error:F4}, top-1 agreement {agreement:P1} of {positions} positions");
        Assert.True(error <= maxError, $"{name} {settings}: largest logit error {error:F4} > {maxError}");
        Assert.True(agreement >= minAgreement, $"{name} {settings}: top-1 agreement {agreement:P1} < {minAgreement:P0}");
    }

    /// <summary>The largest |quantized − float32| logit, the share of positions with the same argmax, and the positions compared.</summary>
    public static (double MaxError, double Agreement, int Positions) Measure(string name, string[] sets)
    {
        var directory = name == "default" ? TestPaths.DefaultModel : TestPaths.Oracle(name);
        var settings = new SessionSettings(IntraOpThreads: 1);
        using var reference = LoadedModel.Load(directory, settings);
        using var quantized = LoadedModel.Load(directory, settings, PipelineConfig.Load(null, sets));
        var vocab = reference.VocabSize;
        double maxError = 0;
        int agree = 0, positions = 0;
        foreach (var ids in Sequences(name, directory))
        {
            var steps = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
            var tokens = ids.Select(i => (long)i).ToArray();
            var expected = reference.Forward(tokens, steps);
            var actual = quantized.Forward(tokens, steps);
            for (var p = 0; p < ids.Length; p++)
            {
                var e = expected.AsSpan(p * vocab, vocab);
                var a = actual.AsSpan(p * vocab, vocab);
                for (var v = 0; v < vocab; v++) maxError = Math.Max(maxError, Math.Abs(e[v] - a[v]));
                if (Sampler.ArgMax(e) == Sampler.ArgMax(a)) agree++;
                positions++;
            }
        }
        return (maxError, (double)agree / positions, positions);
    }

    // Each case's prompts followed by their greedy continuations, so that positions deep into a sequence count too.
    private static IEnumerable<int[]> Sequences(string name, string directory)
    {
        if (name != "default") return OracleCase.Load(name).Select(s => s.InputIds.Concat(s.GreedyNewTokens).ToArray());
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "expected.json")))!["cases"]!.AsArray();
        return cases.Select(c => c!["input_ids"]!.AsArray().Concat(c["greedy_new_token_ids"]!.AsArray()).Select(v => v!.GetValue<int>()).ToArray());
    }
}
