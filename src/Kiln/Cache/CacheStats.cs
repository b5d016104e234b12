using System.Text.Json;

namespace Kiln.Cache;

/// <summary>Persisted hit and miss counts (&lt;root&gt;/stats.json), updated under a lock by every run.</summary>
public static class CacheStats
{
    // A stats file holds a few counts; anything larger is damaged.
    private const int MaxBytes = 1 << 20;

    public static CacheStatistics Read(string root)
    {
        var path = Path.Combine(root, "stats.json");
        if (!File.Exists(path)) return CacheStatistics.Empty;
        try
        {
            // Opened as a regular file only: a FIFO or link there must not block or redirect the read.
            using var stream = FileStatus.OpenRegularFile(path, "stats.json");
            if (stream.Length > MaxBytes) return CacheStatistics.Empty;
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            return JsonSerializer.Deserialize(StrictUtf8.Decode(bytes, "stats.json"), CacheJsonContext.Default.CacheStatistics) ?? CacheStatistics.Empty;
        }
        catch (Exception e) when (e is JsonException or CorruptEntryException)
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
        Write(root, updated);
    }

    /// <summary>Adds one run's weights-tier outcome: a hit, or a miss with its reason.</summary>
    public static void RecordWeights(string root, bool hit, string? missReason, bool quarantined)
    {
        using var guard = CacheLock.Acquire(root, "stats", TimeSpan.FromSeconds(5));
        if (guard is null) return;
        var stats = Read(root);
        var misses = new SortedDictionary<string, long>(stats.WeightsMisses ?? [], StringComparer.Ordinal);
        if (!hit && missReason is not null) misses[Category(missReason)] = misses.GetValueOrDefault(Category(missReason)) + 1;
        Write(root, stats with
        {
            WeightsHits = stats.WeightsHits + (hit ? 1 : 0),
            WeightsMisses = misses,
            Quarantined = stats.Quarantined + (quarantined ? 1 : 0),
        });
    }

    private static void Write(string root, CacheStatistics updated)
    {
        var temporary = Path.Combine(root, $"stats.json.{Environment.ProcessId}.tmp");
        File.Delete(temporary);
        using (var stream = PrivateFiles.CreateNew(temporary)) JsonSerializer.Serialize(stream, updated, CacheJsonContext.Default.CacheStatistics);
        File.Move(temporary, Path.Combine(root, "stats.json"), overwrite: true);
    }

    // "corrupt entry: rank_0/graph.json: checksum mismatch" counts as "corrupt entry".
    private static string Category(string reason) => reason.Split(':')[0];
}
