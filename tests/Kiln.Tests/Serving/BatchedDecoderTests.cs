using Kiln.Runtime;
using Kiln.Serving;

namespace Kiln.Tests.Serving;

/// <summary>
/// The batched decoder against the one-sequence <see cref="CachedDecoder"/> on real checkpoints: rows of
/// different lengths in one step (GroupQueryAttention's per-row seqlens_k over the slot cache), a free slot
/// in the middle of the batch (a throwaway row), and prompts prefilled by chunks. The default model feeds
/// positions to its own rotary embedding; llama_gqa's head size lets the attention kernel rotate (positions
/// from seqlens_k).
/// </summary>
public sealed class BatchedDecoderTests
{
    private static readonly int[][] Prompts = [[1, 203, 207, 61, 178, 143, 67], [1, 43], [1, 9, 88, 17, 230, 31, 5, 77, 12, 40, 101]];

    public static TheoryData<string> Models => [TestPaths.DefaultModel, TestPaths.Oracle("llama_gqa"), TestPaths.Oracle("gpt2")];

    [Theory]
    [MemberData(nameof(Models))]
    public void Each_row_of_a_decode_step_is_bit_for_bit_its_one_sequence_step(string directory)
    {
        using var model = LoadedModel.Load(directory);
        const int steps = 12;
        // Slot 1 stays free: the batch is slots 0..3 with a throwaway row at 1.
        int[] slotOf = [0, 2, 3];
        using var batched = new BatchedDecoder(model, slots: 4, capacity: 64, maxChunk: 64);
        var next = new int[4];
        Array.Fill(next, -1);
        for (var s = 0; s < Prompts.Length; s++) next[slotOf[s]] = Sampler.ArgMax(batched.Prefill(slotOf[s], Prompts[s]));

        var expected = Prompts.Select(p => SingleSequence(model, p, steps)).ToArray();
        for (var step = 0; step < steps; step++)
        {
            var logits = batched.Decode(next).ToArray();
            for (var s = 0; s < Prompts.Length; s++)
            {
                var row = logits.AsSpan(slotOf[s] * model.VocabSize, model.VocabSize);
                AssertBitwiseEqual(expected[s][step], row, $"sequence {s}, step {step}");
                next[slotOf[s]] = Sampler.ArgMax(row);
            }
        }
        Assert.Equal(0, batched.Length(1));
        for (var s = 0; s < Prompts.Length; s++) Assert.Equal(Prompts[s].Length + steps, batched.Length(slotOf[s]));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_prompt_prefilled_by_chunks_gives_exactly_the_logits_of_one_prefill(string directory)
    {
        using var model = LoadedModel.Load(directory);
        var prompt = Prompts[2];
        using var whole = new CachedDecoder(model, prompt.Length);
        var expected = whole.Prefill(prompt.Select(i => (long)i).ToList()).ToArray();
        foreach (var maxChunk in new[] { 3, 4, 5, 10 })
        {
            using var batched = new BatchedDecoder(model, slots: 2, capacity: 32, maxChunk);
            var logits = Array.Empty<float>();
            for (var start = 0; start < prompt.Length;)
            {
                var count = batched.ChunkLength(prompt.Length - start);
                Assert.True(count >= 2, $"chunks of {maxChunk}: a chunk of {count} at {start}");
                logits = batched.Prefill(1, prompt.AsSpan(start, count)).ToArray();
                start += count;
            }
            AssertBitwiseEqual(expected, logits, $"chunks of at most {maxChunk}");
        }

        // One token at a time is a run of decode steps: close, not bit for bit.
        using var single = new BatchedDecoder(model, slots: 1, capacity: 32, maxChunk: 1);
        var last = Array.Empty<float>();
        foreach (var id in prompt) last = single.Prefill(0, [id]).ToArray();
        Assert.True(expected.Zip(last, (a, b) => Math.Abs(a - b)).Max() <= 1e-5f);
    }

    // Five rows a step, so that the kernels take their several-row paths (four rows at a time on Kiln's, MLAS's
    // tiles on MatMulNBits). Measured bit for bit equal here; the bound allows for quantized kernels that sum a
    // row's products in another order when a step has several rows (docs/serve.md).
    [Theory]
    [InlineData("int8")]
    [InlineData("int4")]
    [InlineData("int4_sym")]
    public void A_quantized_decode_step_stays_close_to_each_sequence_alone(string scheme)
    {
        using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: Kiln.Transforms.PipelineConfig.Load(null, [$"quantize_weights.scheme={scheme}"]));
        int[][] prompts = [.. Prompts, [1, 5, 6], [1, 77, 78, 79]];
        const int steps = 8;
        using var batched = new BatchedDecoder(model, slots: prompts.Length, capacity: 64, maxChunk: 64);
        var next = new int[prompts.Length];
        for (var s = 0; s < prompts.Length; s++) next[s] = Sampler.ArgMax(batched.Prefill(s, prompts[s]));
        var expected = prompts.Select(p => SingleSequence(model, p, steps)).ToArray();
        double largest = 0;
        for (var step = 0; step < steps; step++)
        {
            var logits = batched.Decode(next).ToArray();
            for (var s = 0; s < prompts.Length; s++)
            {
                var row = logits.AsSpan(s * model.VocabSize, model.VocabSize);
                for (var v = 0; v < model.VocabSize; v++) largest = Math.Max(largest, Math.Abs(row[v] - expected[s][step][v]));
                // Each sequence follows its own greedy tokens, so that the rows stay comparable step after step.
                next[s] = Sampler.ArgMax(expected[s][step]);
            }
        }
        Assert.True(largest <= 1e-3, $"{scheme}: largest difference {largest}");
    }

    // The logits of each decode step of one sequence alone, greedy.
    private static float[][] SingleSequence(LoadedModel model, int[] prompt, int steps)
    {
        using var decoder = new CachedDecoder(model, prompt.Length + steps);
        var next = Sampler.ArgMax(decoder.Prefill(prompt.Select(i => (long)i).ToList()));
        var all = new float[steps][];
        for (var step = 0; step < steps; step++)
        {
            all[step] = decoder.Decode(next).ToArray();
            next = Sampler.ArgMax(all[step]);
        }
        return all;
    }

    private static void AssertBitwiseEqual(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: logit {i} is {actual[i]} batched, {expected[i]} alone");
        }
    }
}
