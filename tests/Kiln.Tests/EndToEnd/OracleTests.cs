using Kiln.Checkpoints;
using Kiln.Runtime;

namespace Kiln.Tests.EndToEnd;

/// <summary>Kiln's outputs against Hugging Face transformers 4.47 on the oracle checkpoints.</summary>
public sealed class OracleTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Cases => ["llama_gqa", "llama_gqa_sharded", "qwen2", "mistral", "gpt2", "phi3"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_transformers_at_every_position(string name)
    {
        using var model = LoadedModel.Load(TestPaths.Oracle(name));
        using var reference = SafetensorsFile.Open(Path.Combine(TestPaths.Oracle(name), "expected_logits.safetensors"));
        var vocab = model.VocabSize;
        var sequences = OracleCase.Load(name);
        for (var s = 0; s < sequences.Count; s++)
        {
            var ids = sequences[s].InputIds;
            var logits = model.Forward(ids.Select(i => (long)i).ToArray(), Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray());

            var last = logits.AsSpan((ids.Length - 1) * vocab, vocab);
            Assert.True(MaxAbsDifference(last, sequences[s].LastLogits) <= Tolerance, $"sequence {s}: last-position logits differ");

            var argmax = Enumerable.Range(0, ids.Length).Select(p => Sampler.ArgMax(logits.AsSpan(p * vocab, vocab))).ToArray();
            Assert.Equal(sequences[s].ArgmaxPerPosition, argmax);

            var all = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(reference.GetBytes(reference.Tensors[$"seq{s}.logits"]));
            Assert.True(MaxAbsDifference(logits, all) <= Tolerance, $"sequence {s}: logits differ at some position");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_continuation_matches_transformers(string name)
    {
        using var model = LoadedModel.Load(TestPaths.Oracle(name));
        var generator = new Generator(model);
        foreach (var sequence in OracleCase.Load(name))
        {
            var result = generator.Generate(sequence.InputIds, new GenerationOptions(sequence.GreedyNewTokens.Length, new SamplingOptions(), new HashSet<int>()));
            Assert.Equal(sequence.GreedyNewTokens, result.NewIds);
        }
    }

    private static float MaxAbsDifference(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var max = 0f;
        for (var i = 0; i < actual.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        return max;
    }
}
