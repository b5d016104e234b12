using Kiln.Transforms;

namespace Kiln.Cache;

/// <summary>
/// What `kiln cache explain` reports for one model and pipeline: for each snapshot point, whether the
/// cache holds its key and, on a miss, which key components differ from the nearest entry of the same
/// architecture (the one whose components differ in the fewest names).
/// </summary>
public sealed record KeyExplanation(string Architecture, int EntriesForArchitecture, IReadOnlyList<PointExplanation> Points)
{
    /// <summary>Explains <paramref name="keys"/> (from <see cref="SnapshotKeys.ForPoints"/> on <paramref name="pipeline"/>) against <paramref name="entries"/>.</summary>
    public static KeyExplanation Of(PipelineConfig pipeline, IReadOnlyList<SnapshotKey> keys, IReadOnlyList<EntrySummary> entries)
    {
        var architecture = keys.Count > 0 ? ArchitectureOf(keys[0].Components) ?? "?" : "?";
        var candidates = entries.Where(e => e.Manifest is { } m && ArchitectureOf(m.Components) == architecture).ToList();
        var points = keys.Select(key => Explain(PointInfo.Of(pipeline, key.EntryIndex), key, entries, candidates)).ToList();
        return new KeyExplanation(architecture, candidates.Count, points);
    }

    /// <summary>The model.architecture component, or null when the list has none.</summary>
    public static string? ArchitectureOf(IEnumerable<KeyComponent> components) =>
        components.FirstOrDefault(c => c.Name == "model.architecture")?.Value;

    private static PointExplanation Explain(PointInfo point, SnapshotKey key, IReadOnlyList<EntrySummary> entries, IReadOnlyList<EntrySummary> candidates)
    {
        var own = entries.FirstOrDefault(e => e.Key == key.Key);
        if (own?.Manifest?.Key == key.Key) return new PointExplanation(point, key.Key, true, null, null, [], null);
        var note = own is null ? null : "an entry with this key exists but its manifest is unreadable (see `kiln cache verify`)";
        if (candidates.Count == 0) return new PointExplanation(point, key.Key, false, null, null, [], note ?? "no entry for this model architecture");

        // Fewest differing names; then an entry at the same pipeline position; then the most recently used.
        var nearest = candidates
            .Select(e => (Entry: e, Differences: ComponentDifference.Between(e.Manifest!.Components, key.Components)))
            .OrderBy(c => c.Differences.Count)
            .ThenBy(c => c.Entry.Manifest!.Point.Index == point.Index ? 0 : 1)
            .ThenByDescending(c => c.Entry.LastUse)
            .First();
        return new PointExplanation(point, key.Key, false, nearest.Entry.Key, nearest.Entry.Manifest!.Point, nearest.Differences, note);
    }
}

/// <summary>
/// One snapshot point of an explanation: a hit, or a miss with the nearest entry (null when the cache
/// has none for the architecture) and the components that differ from it.
/// </summary>
public sealed record PointExplanation(
    PointInfo Point,
    string Key,
    bool Hit,
    string? NearestKey,
    PointInfo? NearestPoint,
    IReadOnlyList<ComponentDifference> Differences,
    string? Note,
    string? Weights = null);
