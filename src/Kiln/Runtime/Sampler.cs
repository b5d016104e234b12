namespace Kiln.Runtime;

/// <summary>
/// Picks the next token from a row of logits: greedy at temperature 0, otherwise a draw from
/// softmax(logits / T) filtered by top-k then top-p (the order transformers applies them).
/// </summary>
/// <remarks>Owns its random generator, so one seed gives one sequence of draws.</remarks>
public sealed class Sampler
{
    private readonly SamplingOptions options;
    private readonly Random random;

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        this.options = options;
        random = options.Seed is int seed ? new Random(seed) : new Random();
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("no logits", nameof(logits));
        return options.Temperature == 0 ? ArgMax(logits) : Draw(logits);
    }

    /// <summary>Index of the largest logit; the lowest index among equals.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }

    private int Draw(ReadOnlySpan<float> logits)
    {
        var max = logits[ArgMax(logits)];
        var weights = new double[logits.Length];
        for (var i = 0; i < logits.Length; i++) weights[i] = Math.Exp((logits[i] - (double)max) / options.Temperature);

        var candidates = Enumerable.Range(0, weights.Length).ToArray();
        if (options.TopK > 0 || options.TopP < 1)
        {
            // Most probable first; equal weights by lower id, so filtering is deterministic.
            Array.Sort(candidates, (a, b) => weights[a] != weights[b] ? weights[b].CompareTo(weights[a]) : a.CompareTo(b));
            if (options.TopK > 0 && options.TopK < candidates.Length) candidates = candidates[..options.TopK];
            candidates = candidates[..TopPCount(candidates, weights)];
        }
        return Pick(candidates, weights);
    }

    // The smallest most-probable prefix whose renormalized mass reaches TopP; at least one token.
    private int TopPCount(int[] sorted, double[] weights)
    {
        if (options.TopP >= 1) return sorted.Length;
        var total = 0.0;
        foreach (var id in sorted) total += weights[id];
        var cumulative = 0.0;
        for (var n = 0; n < sorted.Length; n++)
        {
            cumulative += weights[sorted[n]] / total;
            if (cumulative >= options.TopP) return n + 1;
        }
        return sorted.Length;
    }

    private int Pick(int[] candidates, double[] weights)
    {
        var total = 0.0;
        foreach (var id in candidates) total += weights[id];
        var u = random.NextDouble() * total;
        var lastPossible = candidates[0];
        foreach (var id in candidates)
        {
            if (weights[id] == 0) continue;
            lastPossible = id;
            u -= weights[id];
            if (u < 0) return id;
        }
        // Rounding can leave u a hair above zero after the last candidate.
        return lastPossible;
    }
}
