using System.Diagnostics;
using Kiln.Benchmarks;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>Medians of timed llama.cpp generations (after one warm-up), measured like `kiln bench`.</summary>
internal sealed record LlamaCppResult(string Model, int Threads, int PromptTokens, int NewTokens, int Repeats,
    double PrefillTokensPerS, double DecodeTokensPerS, double TtftMs);

/// <summary>
/// Greedy generation with llama.cpp's own KV cache: one batch for the prompt, then one decode call per
/// token; the first token's time is the prefill, the rest the decode.
/// </summary>
internal static class LlamaCppBenchmark
{
    public static LlamaCppResult Run(string gguf, int promptTokens, int newTokens, int threads, int repeats)
    {
        var parameters = new ModelParams(gguf)
        {
            ContextSize = (uint)(promptTokens + newTokens),
            BatchSize = (uint)Math.Max(promptTokens, 1),
            UBatchSize = (uint)Math.Max(promptTokens, 1),
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var vocab = weights.NativeHandle.Vocab;
        var prompt = ModelBenchmark.SeededPrompt(vocab.Count, promptTokens, seed: 0, bos: vocab.BOS is { } bos ? (int)bos : null);

        Generate(context, prompt, newTokens, vocab.Count);
        var runs = Enumerable.Range(0, repeats).Select(_ => Generate(context, prompt, newTokens, vocab.Count)).ToList();
        return new LlamaCppResult(Path.GetFileName(gguf), threads, promptTokens, newTokens, repeats,
            Median(runs.Select(r => promptTokens / (r.FirstMs / 1000))),
            Median(runs.Select(r => (newTokens - 1) / ((r.TotalMs - r.FirstMs) / 1000))),
            Median(runs.Select(r => r.FirstMs)));
    }

    private static (double FirstMs, double TotalMs) Generate(LLamaContext context, int[] prompt, int newTokens, int vocabSize)
    {
        context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        var clock = Stopwatch.StartNew();
        batch.AddRange(prompt.Select(i => (LLamaToken)i).ToArray(), 0, LLamaSeqId.Zero, true);
        Decode(context, batch);
        var next = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1), vocabSize);
        var firstMs = clock.Elapsed.TotalMilliseconds;
        for (var produced = 1; produced < newTokens; produced++)
        {
            batch.Clear();
            batch.Add(next, prompt.Length + produced - 1, LLamaSeqId.Zero, true);
            Decode(context, batch);
            next = ArgMax(context.NativeHandle.GetLogitsIth(0), vocabSize);
        }
        return (firstMs, clock.Elapsed.TotalMilliseconds);
    }

    private static void Decode(LLamaContext context, LLamaBatch batch)
    {
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}");
    }

    private static LLamaToken ArgMax(Span<float> logits, int vocabSize)
    {
        var best = 0;
        for (var i = 1; i < vocabSize; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
