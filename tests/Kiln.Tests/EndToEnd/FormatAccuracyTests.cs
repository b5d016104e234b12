using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Tests.Runtime;
using Kiln.Transforms;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// Every weight format against float32 on the default model, over every position of its three reference
/// prompts and their greedy continuations (233 positions): the largest logit error, the share of positions
/// whose top-1 token agrees, and the perplexity of the greedy text (each next token under the format's
/// logits). bf16 and f16 are the float32 checkpoint rounded to that dtype and read as stored; int8 and int4
/// quantize the float32 weights. The bounds are the measured figures (docs/weights.md) with some room: a
/// broken kernel, conversion or quantizer lands far outside them.
/// </summary>
public sealed class FormatAccuracyTests(ITestOutputHelper output)
{
    public static TheoryData<string, double, double, double> Formats => new()
    {
        // format, largest logit error at most, top-1 agreement at least, perplexity at most this ratio of float32's
        // (measured: bf16 0.19, 100 %, 1.0013; f16 0.020, 100 %, 1.0002; int8 0.52, 98.7 %, 0.997; int4 5.39, 82.8 %, 1.124)
        { "bf16", 0.25, 0.98, 1.01 },
        { "f16", 0.03, 0.99, 1.005 },
        { "int8", 0.65, 0.96, 1.02 },
        { "int4", 6.5, 0.78, 1.25 },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Each_format_stays_close_to_float32(string format, double maxError, double minAgreement, double maxPerplexityRatio)
    {
        using var temp = new TempDir();
        var settings = new SessionSettings(IntraOpThreads: 1);
        using var reference = LoadedModel.Load(TestPaths.DefaultModel, settings);
        using var model = format switch
        {
            "bf16" => LoadedModel.Load(StoredWeightDtypeTests.Convert(TestPaths.DefaultModel, temp.Path, DType.BF16), settings),
            "f16" => LoadedModel.Load(StoredWeightDtypeTests.Convert(TestPaths.DefaultModel, temp.Path, DType.F16), settings),
            _ => LoadedModel.Load(TestPaths.DefaultModel, settings, PipelineConfig.Load(null, [$"quantize_weights.scheme={format}"])),
        };
        var vocab = reference.VocabSize;
        double maxDifference = 0, referenceNll = 0, nll = 0;
        int agree = 0, positions = 0, predicted = 0;
        foreach (var ids in DefaultModelCase.Load().Select(c => c.InputIds.Concat(c.GreedyNewTokenIds).ToArray()))
        {
            var tokens = ids.Select(i => (long)i).ToArray();
            var steps = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
            var expected = reference.Forward(tokens, steps);
            var actual = model.Forward(tokens, steps);
            for (var p = 0; p < ids.Length; p++)
            {
                var e = expected.AsSpan(p * vocab, vocab);
                var a = actual.AsSpan(p * vocab, vocab);
                for (var v = 0; v < vocab; v++) maxDifference = Math.Max(maxDifference, Math.Abs(e[v] - a[v]));
                if (Sampler.ArgMax(e) == Sampler.ArgMax(a)) agree++;
                positions++;
                if (p + 1 == ids.Length) continue;
                referenceNll -= LogSoftmax(e, ids[p + 1]);
                nll -= LogSoftmax(a, ids[p + 1]);
                predicted++;
            }
        }
        var (referencePerplexity, perplexity) = (Math.Exp(referenceNll / predicted), Math.Exp(nll / predicted));
        var agreement = (double)agree / positions;
        output.WriteLine($"{format}: largest logit error {maxDifference:F4}, top-1 agreement {agreement:P1} of {positions} positions, " +
            $"perplexity {perplexity:F4} (f32 {referencePerplexity:F4}, ratio {perplexity / referencePerplexity:F4})");
        Assert.True(maxDifference <= maxError, $"{format}: largest logit error {maxDifference:F4} > {maxError}");
        Assert.True(agreement >= minAgreement, $"{format}: top-1 agreement {agreement:P1} < {minAgreement:P0}");
        Assert.True(perplexity <= referencePerplexity * maxPerplexityRatio, $"{format}: perplexity {perplexity:F4} > {maxPerplexityRatio} x f32's {referencePerplexity:F4}");
    }

    private static double LogSoftmax(ReadOnlySpan<float> logits, int token)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (var l in logits) max = Math.Max(max, l);
        foreach (var l in logits) sum += Math.Exp(l - max);
        return logits[token] - max - Math.Log(sum);
    }
}
