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
        // (measured: the error about 4/5 of the bound, the agreement 2 to 5 points above it)
        { "default", "scheme=int8", 0.65, 0.96 },
        { "default", "scheme=int8 output_layer=false", 0.65, 0.96 },
        { "default", "scheme=int4", 6.5, 0.78 },
        { "default", "scheme=int4 output_layer=false", 6.5, 0.80 },
        { "default", "scheme=int4_sym", 9.5, 0.72 },
        { "default", "scheme=int4_sym output_layer=false", 8.5, 0.74 },
        { "llama_gqa", "scheme=int8", 0.09, 0.95 },
        { "llama_gqa", "scheme=int4", 0.9, 0.63 },
        { "llama_gqa", "scheme=int4_sym", 1.0, 0.71 },
        { "llama_gqa_sharded", "scheme=int8", 0.09, 0.93 },
        { "llama_gqa_sharded", "scheme=int4", 1.0, 0.69 },
        { "llama_gqa_sharded", "scheme=int4_sym", 1.05, 0.67 },
        { "qwen2", "scheme=int8", 0.09, 0.94 },
        { "qwen2", "scheme=int4", 0.95, 0.70 },
        { "qwen2", "scheme=int4_sym", 0.95, 0.67 },
        { "mistral", "scheme=int8", 0.09, 0.96 },
        { "mistral", "scheme=int4", 0.9, 0.71 },
        { "mistral", "scheme=int4_sym", 1.05, 0.62 },
        { "phi3", "scheme=int8", 0.085, 0.94 },
        { "phi3", "scheme=int4", 0.85, 0.74 },
        // GPT-2's oracle logits span about 50 (its weights are of order 1), hence the larger errors; its top-2 margins are wide.
        { "gpt2", "scheme=int8", 0.6, 0.97 },
        { "gpt2", "scheme=int4", 6.0, 0.95 },
        { "gpt2", "scheme=int4_sym", 6.5, 0.95 },
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
