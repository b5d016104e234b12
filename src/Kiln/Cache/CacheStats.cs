using System.Text.Json;

namespace Kiln.Cache;

/// <summary>Persisted hit and miss counts (&lt;root&gt;/stats.json), updated under a lock by every run.</summary>
public static class CacheStats
{
    public static CacheStatistics Read(string root)
    {
        var path = Path.Combine(root, "stats.json");
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllText(path), CacheJsonContext.Default.CacheStatistics) ?? CacheStatistics.Empty : CacheStatistics.Empty;
        }
        catch (JsonException)
        {
            return CacheStatistics.Empty; // a damaged stats file restarts the counts; it never fails a run
        }
    }

    /// <summary>Adds one run's outcome: a hit with the time it saved, or a miss with its reason.</summary>
    public static void Record(string root, bool hit, string? missReason, double savedMs, bool quarantined)
    {
        using var guard = CacheLock.Acquire(root, "stats", TimeSpan.FromSeconds(5));
        if (guard is null) return;
        var stats = Read(root);
        var misses = new SortedDictionary<string, long>(stats.Misses, StringComparer.Ordinal);
        if (!hit && missReason is not null) misses[Category(missReason)] = misses.GetValueOrDefault(Category(missReason)) + 1;
        var updated = stats with
        {
            Hits = stats.Hits + (hit ? 1 : 0),
            Misses = misses,
            Quarantined = stats.Quarantined + (quarantined ? 1 : 0),
            SavedMs = stats.SavedMs + Math.Max(0, savedMs),
        };
        var temporary = Path.Combine(root, $"stats.json.{Environment.ProcessId}.tmp");
        File.WriteAllText(temporary, JsonSerializer.Serialize(updated, CacheJsonContext.Default.CacheStatistics));
        File.Move(temporary, Path.Combine(root, "stats.json"), overwrite: true);
    }

    // "corrupt entry: rank_0/graph.json: checksum mismatch" counts as "corrupt entry".
    private static string Category(string reason) => reason.Split(':')[0];
}
