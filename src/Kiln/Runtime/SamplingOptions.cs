namespace Kiln.Runtime;

/// <summary>
/// How the next token is chosen. Temperature 0 is greedy; TopK 0 and TopP 1 turn those filters off;
/// a null Seed draws a different sequence each run.
/// </summary>
public sealed record SamplingOptions(float Temperature = 0, int TopK = 0, float TopP = 1, int? Seed = null)
{
    /// <summary>Throws a <see cref="KilnException"/> naming the setting that is out of range ("top_p").</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
            throw new KilnException($"temperature: must be a finite number >= 0, got {Temperature}");
        if (TopK < 0) throw new KilnException($"top_k: must be >= 0 (0 keeps all tokens), got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new KilnException($"top_p: must be in (0, 1], got {TopP}");
    }
}
