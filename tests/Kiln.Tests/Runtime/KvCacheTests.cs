using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

/// <summary>
/// Generation over the key/value cache (insert_kv_cache + CachedDecoder) against the same fused graph
/// without the cache, which recomputes the whole sequence each step.
/// </summary>
public sealed class KvCacheTests(KvCacheModels models) : IClassFixture<KvCacheModels>
{
    private const float Tolerance = 1e-4f;
    private static readonly int[] Prompt = [3, 17, 42, 9, 100, 5, 77];

    public static TheoryData<string, string> Variants => new()
    {
        { "llama", FusedLlama.Cached },
        { "llama", FusedLlama.CachedSeparateRotary },
        { "mistral", FusedLlama.Cached },
        { "mistral", FusedLlama.CachedSeparateRotary },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Logits_of_every_decode_step_match_the_uncached_model(string family, string pipeline)
    {
        using var cached = FusedLlama.Load(Checkpoint(family), pipeline);
        using var uncached = FusedLlama.Load(Checkpoint(family), FusedLlama.Uncached);
        Assert.NotNull(cached.KvCache);
        Assert.Null(uncached.KvCache);
        var vocab = cached.VocabSize;
        var sequence = Prompt.Select(i => (long)i).ToList();
        using var decoder = new CachedDecoder(cached, 40);
        var logits = decoder.Prefill(sequence).ToArray();
        for (var step = 0; ; step++)
        {
            var reference = uncached.Forward(sequence, Positions(sequence.Count)).AsSpan((sequence.Count - 1) * vocab, vocab);
            AssertClose(reference, logits, $"step {step} (sequence of {sequence.Count})");
            if (sequence.Count == decoder.Cache.Capacity) break;
            // Feed a spread of ids, not the argmax, so the steps do not fall into a repeating loop.
            var next = (Sampler.ArgMax(logits) + 31 * step) % vocab;
            sequence.Add(next);
            logits = decoder.Decode(next).ToArray();
        }
        Assert.True(decoder.Length > 3 * KvCacheModels.SlidingWindow);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Greedy_text_with_the_cache_equals_greedy_text_without_it(string family, string pipeline)
    {
        using var cached = FusedLlama.Load(Checkpoint(family), pipeline);
        using var uncached = FusedLlama.Load(Checkpoint(family), FusedLlama.Uncached);
        var options = new GenerationOptions(45, new SamplingOptions(), new HashSet<int>());
        var expected = new Generator(uncached).Generate(Prompt, options);
        var actual = new Generator(cached).Generate(Prompt, options);
        Assert.Equal(45, expected.NewIds.Length);
        Assert.Equal(expected.NewIds, actual.NewIds);
        Assert.Equal("max_new_tokens", actual.StopReason);
    }

    [Fact]
    public void Forward_on_the_cached_graph_returns_every_positions_logits()
    {
        using var cached = FusedLlama.Load(models.Llama, FusedLlama.Cached);
        using var uncached = FusedLlama.Load(models.Llama, FusedLlama.Uncached);
        var ids = Prompt.Select(i => (long)i).ToArray();
        AssertClose(uncached.Forward(ids, Positions(ids.Length)), cached.Forward(ids, Positions(ids.Length)), "all positions");
        Assert.Throws<KilnException>(() => cached.Forward(ids, Positions(ids.Length).Select(p => p + 1).ToArray()));
    }

    [Fact]
    public void The_cache_is_allocated_once_and_written_in_place_by_each_step()
    {
        using var model = FusedLlama.Load(models.Llama, FusedLlama.Cached);
        using var decoder = new CachedDecoder(model, 20);
        var signature = decoder.Cache.Signature;
        var key = decoder.Cache.Key(0);
        ref readonly var start = ref MemoryMarshal.GetReference(decoder.Cache.Keys(0));
        Assert.All(decoder.Cache.Keys(1).ToArray(), x => Assert.Equal(0f, x));

        decoder.Prefill(Prompt.Select(i => (long)i).ToList());
        AssertWrittenRows(decoder, Prompt.Length);
        for (var step = 0; step < 20 - Prompt.Length; step++)
        {
            decoder.Decode(step + 1);
            AssertWrittenRows(decoder, Prompt.Length + step + 1);
            Assert.Same(key, decoder.Cache.Key(0));
            Assert.True(Unsafe.AreSame(in start, in MemoryMarshal.GetReference(decoder.Cache.Keys(0))), "the cache moved");
        }
        Assert.Equal(2L * signature.Layers * signature.KvHeads * 20 * signature.HeadDim * sizeof(float), decoder.Cache.Bytes);
        Assert.Throws<KilnException>(() => decoder.Decode(1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_prompt_and_new_tokens_beyond_the_context_stop_with_reason_context(bool withCache)
    {
        using var model = FusedLlama.Load(models.Llama, withCache ? FusedLlama.Cached : FusedLlama.Uncached);
        var generator = new Generator(model);
        var prompt = Enumerable.Range(1, KvCacheModels.MaxPositions - 4).ToArray();
        var result = generator.Generate(prompt, new GenerationOptions(10, new SamplingOptions(), new HashSet<int>()));
        Assert.Equal("context", result.StopReason);
        Assert.Equal(4, result.NewIds.Length);

        var shortContext = generator.Generate(Prompt, new GenerationOptions(10, new SamplingOptions(), new HashSet<int>(), ContextLength: Prompt.Length + 3));
        Assert.Equal("context", shortContext.StopReason);
        Assert.Equal(3, shortContext.NewIds.Length);
    }

    private string Checkpoint(string family) => family == "mistral" ? models.Mistral : models.Llama;

    private static long[] Positions(int count) => Enumerable.Range(0, count).Select(p => (long)p).ToArray();

    // Layer 0's keys: the first `length` rows of head 0 hold keys, the rest are still zero.
    private static void AssertWrittenRows(CachedDecoder decoder, int length)
    {
        var d = decoder.Cache.Signature.HeadDim;
        var keys = decoder.Cache.Keys(0);
        for (var row = 0; row < decoder.Cache.Capacity; row++)
        {
            var written = keys.Slice(row * d, d).ToArray().Any(x => x != 0);
            Assert.True(written == row < length, $"row {row} of the cache with {length} tokens is {(written ? "" : "not ")}written");
        }
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var max = 0f;
        for (var i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= Tolerance, $"{what}: logits differ by {max}");
    }
}
