using System.Diagnostics;

namespace Kiln.Runtime;

/// <summary>What to generate: how many tokens at most, how to pick each, and which ids stop it.</summary>
public sealed record GenerationOptions(int MaxNewTokens, SamplingOptions Sampling, IReadOnlySet<int> StopIds);

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
/// Autoregressive generation: runs the model on the sequence so far, picks the next token from the last
/// position's logits, and repeats until a stop id, the token limit or the end of the context.
/// </summary>
public sealed class Generator(LoadedModel model)
{
    public GenerationResult Generate(IReadOnlyList<int> promptIds, GenerationOptions options, Action<int>? onToken = null)
    {
        if (promptIds.Count == 0) throw new KilnException("prompt: no tokens to start from (give a prompt or --prompt-ids)");
        var vocab = model.VocabSize;
        foreach (var id in promptIds)
        {
            if (id < 0 || id >= vocab) throw new KilnException($"prompt: token id {id} is outside the vocabulary (0..{vocab - 1})");
        }
        if (promptIds.Count > model.MaxPositions)
        {
            throw new KilnException($"prompt: {promptIds.Count} tokens exceed the model's context of {model.MaxPositions} " +
                "(config.json max_position_embeddings)");
        }

        var sampler = new Sampler(options.Sampling);
        var sequence = promptIds.Select(i => (long)i).ToList();
        var newIds = new List<int>();
        var clock = Stopwatch.StartNew();
        var firstTokenMs = 0.0;
        var reason = "max_new_tokens";
        while (newIds.Count < options.MaxNewTokens)
        {
            if (sequence.Count >= model.MaxPositions) { reason = "context"; break; }
            var logits = model.Forward(sequence, Enumerable.Range(0, sequence.Count).Select(p => (long)p).ToArray());
            var next = sampler.Next(logits.AsSpan((sequence.Count - 1) * vocab, vocab));
            if (newIds.Count == 0) firstTokenMs = clock.Elapsed.TotalMilliseconds;
            newIds.Add(next);
            sequence.Add(next);
            onToken?.Invoke(next);
            if (options.StopIds.Contains(next)) { reason = "stop_token"; break; }
        }
        return new GenerationResult(promptIds.ToArray(), [.. newIds], reason, firstTokenMs, clock.Elapsed.TotalMilliseconds);
    }
}
