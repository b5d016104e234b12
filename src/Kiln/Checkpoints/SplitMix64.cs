namespace Kiln.Checkpoints;

/// <summary>
/// A tiny seeded generator (Steele, Lea and Flood's SplitMix64) whose output is fixed by its
/// definition, unlike <see cref="Random"/>, whose sequence may change between .NET versions.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [-1, 1), exactly representable (24 random bits).</summary>
    public float NextSigned() => (Next() >> 40) * (2f / (1 << 24)) - 1f;

    /// <summary>A seed for an independent stream named <paramref name="name"/> (FNV-1a of the name mixed with <paramref name="seed"/>).</summary>
    public static ulong Derive(long seed, string name)
    {
        var hash = 0xCBF29CE484222325UL;
        foreach (var c in name) hash = (hash ^ c) * 0x100000001B3UL;
        return new SplitMix64(hash ^ (ulong)seed).Next();
    }
}
