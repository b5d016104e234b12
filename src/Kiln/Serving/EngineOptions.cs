namespace Kiln.Serving;

/// <summary>
/// How a <see cref="ServingEngine"/> batches: <paramref name="Slots"/> sequences decode together at most
/// (each holds a key/value cache of the model's context); at most <paramref name="MaxWaiting"/> more wait
/// for a slot; a prompt goes in by chunks of at most <paramref name="PrefillChunk"/> tokens, one chunk
/// between two decode steps, so that a long prompt does not stall the running streams.
/// <paramref name="AfterStep"/>, when set, is called on the engine's thread after every step that ran the
/// model (for an application that embeds the engine: to count, trace or pace steps); the next step starts
/// when it returns.
/// </summary>
public sealed record EngineOptions(int Slots = 8, int MaxWaiting = 64, int PrefillChunk = 256, Action? AfterStep = null)
{
    public const int MaxSlots = 256;

    public const int MinPrefillChunk = 3;

    /// <summary>Throws a <see cref="KilnException"/> naming the option that is out of range.</summary>
    public void Validate()
    {
        if (Slots is < 1 or > MaxSlots) throw new KilnException($"--slots: must be between 1 and {MaxSlots}, got {Slots}");
        if (MaxWaiting < 0) throw new KilnException($"--max-waiting: must not be negative, got {MaxWaiting}");
        // Three or more, so that a prompt never ends in a one-token chunk (BatchedDecoder.ChunkLength).
        if (PrefillChunk < MinPrefillChunk) throw new KilnException($"--prefill-chunk: must be at least {MinPrefillChunk}, got {PrefillChunk}");
    }
}
