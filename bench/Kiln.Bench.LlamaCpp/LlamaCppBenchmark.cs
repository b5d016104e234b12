using Kiln.Benchmarks;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>Medians of timed llama.cpp generations (after one warm-up), measured like `kiln bench`.</summary>
internal sealed record LlamaCppResult(string Model, int Threads, int PromptTokens, int NewTokens, int Repeats,
    double PrefillTokensPerS, double DecodeTokensPerS, double TtftMs);

/// <summary>
/// The default mode's llama.cpp run, in this process: greedy generation with llama.cpp's own KV cache
/// (<see cref="LlamaCppChild.Generate"/>); the first token's time is the prefill, the rest the decode.
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

        LlamaCppChild.Generate(context, prompt, newTokens, vocab.Count);
        var runs = Enumerable.Range(0, repeats).Select(_ => LlamaCppChild.Generate(context, prompt, newTokens, vocab.Count)).ToList();
        return new LlamaCppResult(Path.GetFileName(gguf), threads, promptTokens, newTokens, repeats,
            LlamaCppChild.Median(runs.Select(r => promptTokens / (r.FirstMs / 1000))),
            LlamaCppChild.Median(runs.Select(r => (newTokens - 1) / ((r.TotalMs - r.FirstMs) / 1000))),
            LlamaCppChild.Median(runs.Select(r => r.FirstMs)));
    }
}
