using System.Diagnostics;

namespace Kiln.Runtime;

/// <summary>
/// What to generate: how many tokens at most, how to pick each, and which ids stop it.
/// <paramref name="ContextLength"/> caps the sequence (prompt and new tokens); null or more than the
/// loaded model's <see cref="LoadedModel.Context"/> means that context.
/// </summary>
public sealed record GenerationOptions(int MaxNewTokens, SamplingOptions Sampling, IReadOnlySet<int> StopIds, int? ContextLength = null);

/// <summary>
/// The outcome of one generation. <see cref="StopReason"/> is "stop_token" (the stop id is the last of
/// <see cref="NewIds"/>), "max_new_tokens" or "context" (the model's context is full).
/// </summary>
public sealed record GenerationResult(int[] PromptIds, int[] NewIds, string StopReason, double FirstTokenMs, double TotalMs)
{
    /// <summary>Tokens per second after the first token.</summary>
    public double DecodeTokensPerSecond => NewIds.Length > 1 ? (NewIds.Length - 1) / ((TotalMs - FirstTokenMs) / 1000) : 0;
}

/// <summary>
/// Autoregressive generation: picks the next token from the last position's logits and repeats until a
/// stop id, the token limit or the end of the context. A model with a key/value cache runs the prompt
/// once and then one token per step over a cache sized for this generation; a model without one re-runs
/// the whole sequence each step.
/// </summary>
public sealed class Generator(LoadedModel model)
{
    public GenerationResult Generate(IReadOnlyList<int> promptIds, GenerationOptions options, Action<int>? onToken = null)
    {
        var vocab = model.VocabSize;
        var context = Math.Min(options.ContextLength ?? model.Context, model.Context);
        if (context <= 0) throw new KilnException($"context length: must be positive, got {context}");
        model.CheckTokens(promptIds, "prompt", context);

        var sampler = new Sampler(options.Sampling);
        var sequence = promptIds.Select(i => (long)i).ToList();
        var newIds = new List<int>();
        var clock = Stopwatch.StartNew();
        var firstTokenMs = 0.0;
        var reason = "max_new_tokens";
        // The last new token is never fed back, so the cache needs prompt + max_new_tokens - 1 places at most.
        using var decoder = model.KvCache != null
            ? new CachedDecoder(model, Math.Max(1, Math.Min(context, promptIds.Count + options.MaxNewTokens - 1)))
            : null;
        while (newIds.Count < options.MaxNewTokens)
        {
            if (sequence.Count >= context) { reason = "context"; break; }
            var logits = NextLogits(decoder, sequence, newIds.Count == 0, vocab);
            // Rank 0 chooses and every rank follows, so all ranks hold the same sequence.
            var next = model.World.Broadcast(model.World.Rank == 0 ? sampler.Next(logits) : 0);
            if (newIds.Count == 0) firstTokenMs = clock.Elapsed.TotalMilliseconds;
            newIds.Add(next);
            sequence.Add(next);
            onToken?.Invoke(next);
            if (options.StopIds.Contains(next)) { reason = "stop_token"; break; }
        }
        return new GenerationResult(promptIds.ToArray(), [.. newIds], reason, firstTokenMs, clock.Elapsed.TotalMilliseconds);
    }

    // The logits after the last token of the sequence.
    private ReadOnlySpan<float> NextLogits(CachedDecoder? decoder, List<long> sequence, bool first, int vocab)
    {
        if (decoder != null) return first ? decoder.Prefill(sequence) : decoder.Decode(sequence[^1]);
        var logits = model.Forward(sequence, Enumerable.Range(0, sequence.Count).Select(p => (long)p).ToArray());
        return logits.AsSpan((sequence.Count - 1) * vocab, vocab);
    }
}
