namespace Kiln.Cache;

/// <summary>The key of one snapshot point: the hex digest and every component of the prefix it covers.</summary>
public sealed record SnapshotKey(int EntryIndex, string Key, IReadOnlyList<KeyComponent> Components)
{
    /// <summary>A short form for messages (the first 16 hex digits).</summary>
    public string Short => Key[..16];
}
