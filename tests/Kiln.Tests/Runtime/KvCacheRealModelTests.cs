using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

/// <summary>
/// The cache on real checkpoints (the default model and the transformers oracles), through the fused
/// graph: the fused graph matches the reference form, and the cached graph generates the same greedy
/// text with the same logits.
/// </summary>
public sealed class KvCacheRealModelTests
{
    private const float Tolerance = 1e-4f;

    private static readonly Kiln.Transforms.PipelineConfig ReferencePipeline = Kiln.Transforms.PipelineConfig.Load(sets:
        Kiln.Transforms.PipelineConfig.Load().Entries.OfType<Kiln.Transforms.TransformStep>().Where(e => e.Name != "load_weights").Select(e => $"{e.Name}.enabled=false").Distinct().ToArray());

    public static TheoryData<string, string> Cases
    {
        get
        {
            var cases = new TheoryData<string, string>();
            foreach (var directory in new[] { TestPaths.DefaultModel, TestPaths.Oracle("llama_gqa"), TestPaths.Oracle("qwen2"), TestPaths.Oracle("mistral"), TestPaths.Oracle("phi3") })
            {
                cases.Add(directory, FusedLlama.Cached);
                cases.Add(directory, FusedLlama.CachedSeparateRotary);
            }
            return cases;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_text_and_logits_with_the_cache_equal_the_uncached_model(string directory, string pipeline)
    {
        // The reference form, recomputing the whole sequence at every step.
        using var reference = LoadedModel.Load(directory, pipeline: ReferencePipeline);
        using var uncached = FusedLlama.Load(directory, FusedLlama.Uncached);
        using var cached = FusedLlama.Load(directory, pipeline);
        Assert.Null(reference.KvCache);
        int[] prompt = [1, 203, 207, 61, 178, 143, 67];
        var options = new GenerationOptions(48, new SamplingOptions(), new HashSet<int>());
        var expected = new Generator(reference).Generate(prompt, options).NewIds;
        Assert.Equal(expected, new Generator(uncached).Generate(prompt, options).NewIds);
        Assert.Equal(expected, new Generator(cached).Generate(prompt, options).NewIds);

        // Every decode step's logits against the reference pipeline recomputing the sequence.
        var vocab = cached.VocabSize;
        var sequence = prompt.Select(i => (long)i).ToList();
        using var decoder = new CachedDecoder(cached, prompt.Length + expected.Length);
        var logits = decoder.Prefill(sequence).ToArray();
        foreach (var next in expected)
        {
            var all = reference.Forward(sequence, Enumerable.Range(0, sequence.Count).Select(p => (long)p).ToArray());
            var max = 0f;
            for (var i = 0; i < vocab; i++) max = Math.Max(max, Math.Abs(all[(sequence.Count - 1) * vocab + i] - logits[i]));
            Assert.True(max <= Tolerance, $"sequence of {sequence.Count}: logits differ by {max}");
            sequence.Add(next);
            logits = decoder.Decode(next).ToArray();
        }
    }
}
