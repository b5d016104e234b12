using Kiln.Checkpoints;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Cache;

/// <summary>
/// The maintenance side of the snapshot cache, behind `kiln cache`: listing, finding an entry by key
/// prefix, explaining keys, re-verifying, pruning, clearing and reading the persisted statistics.
/// It never creates a missing root, and refuses an untrusted one like a compile does.
/// </summary>
public sealed class CacheInspector
{
    private readonly SnapshotStore _store;

    private CacheInspector(CacheSettings settings) => _store = new SnapshotStore(settings);

    public CacheSettings Settings => _store.Settings;

    /// <summary>Throws <see cref="KilnException"/> when the root exists but is not trusted, or a link is below it (see <see cref="RootTrust"/>).</summary>
    public static CacheInspector Open(CacheSettings settings)
    {
        if (!Directory.Exists(settings.Root)) return new CacheInspector(settings);
        if (RootTrust.LinkBelowRoot(settings.Root) is { } link) throw new KilnException($"not reading the cache: {link}");
        if (!settings.TrustSharedRoot && RootTrust.CheckTree(settings.Root) is { } distrust)
            throw new KilnException($"not reading the cache: {distrust} (the trust_shared_root setting allows it)");
        return new CacheInspector(settings);
    }

    /// <summary>Every published entry, most recently used first.</summary>
    public IReadOnlyList<EntrySummary> Entries() => _store.List();

    /// <summary>The entry whose key is <paramref name="keyOrPrefix"/> or starts with it; an unknown or ambiguous prefix is a <see cref="KilnException"/>.</summary>
    public EntrySummary Find(string keyOrPrefix)
    {
        var entries = Entries();
        if (entries.FirstOrDefault(e => e.Key == keyOrPrefix) is { } exact) return exact;
        var matches = keyOrPrefix.Length == 0 ? [] : entries.Where(e => e.Key.StartsWith(keyOrPrefix, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new KilnException($"no cache entry has the key '{keyOrPrefix}' (see `kiln cache list`)"),
            _ => throw new KilnException($"'{keyOrPrefix}' is ambiguous: {matches.Count} entries start with it ({string.Join(", ", matches.Select(m => m.Key[..Math.Min(16, m.Key.Length)]))})"),
        };
    }

    /// <summary>Explains <paramref name="keys"/> (from <see cref="SnapshotKeys.ForPoints"/> on <paramref name="pipeline"/>) against the entries.</summary>
    public KeyExplanation Explain(PipelineConfig pipeline, IReadOnlyList<SnapshotKey> keys) => KeyExplanation.Of(pipeline, keys, Entries());

    /// <summary>
    /// As <see cref="Explain(PipelineConfig, IReadOnlyList{SnapshotKey})"/>, and at a final point that hits, whether the
    /// entry's weights tier still matches <paramref name="checkpoint"/>'s content (<see cref="WeightsTier.Explain"/>).
    /// </summary>
    public KeyExplanation Explain(PipelineConfig pipeline, IReadOnlyList<SnapshotKey> keys, Checkpoint checkpoint)
    {
        var entries = Entries();
        var explanation = KeyExplanation.Of(pipeline, keys, entries);
        if (explanation.Points.Count == 0 || explanation.Points[^1] is not { Hit: true } last) return explanation;
        var entry = entries.First(e => e.Key == last.Key);
        try
        {
            return explanation with { Points = [.. explanation.Points.SkipLast(1), last with { Weights = WeightsTier.Explain(Settings, entry, checkpoint) }] };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return explanation with { Points = [.. explanation.Points.SkipLast(1), last with { Weights = $"unknown: cannot hash the checkpoint ({e.Message})" }] };
        }
    }

    /// <summary>
    /// Re-runs a restore's checks on every rank of every entry through a read-only store, so nothing
    /// is quarantined and no last use changes; a corrupt entry is quarantined only when
    /// <paramref name="quarantine"/> is set.
    /// </summary>
    public IReadOnlyList<EntryCheck> Verify(bool quarantine)
    {
        var reader = new SnapshotStore(Settings with { Mode = CacheMode.ReadOnly });
        var checks = new List<EntryCheck>();
        foreach (var entry in Entries())
        {
            // Without a manifest the restore itself says why: unreadable (permissions) or corrupt (missing, a link, bad JSON).
            var reason = entry.Manifest is not { } manifest
                ? reader.TryRestore(new SnapshotKey(-1, entry.Key, []), 0, OpRegistry.Default).MissReason ?? $"{CorruptPrefix}manifest.json is unreadable"
                : Enumerable.Range(0, Math.Max(1, manifest.WorldSize))
                    .Select(rank => reader.TryRestore(new SnapshotKey(manifest.Point.Index, entry.Key, manifest.Components), rank, OpRegistry.Default).MissReason)
                    .FirstOrDefault(r => r is not null);
            // The weights tier's files too: size and XXH3-128 of every rank's file.
            reason ??= entry.Weights.Select(w => WeightsTier.Check(Path.Combine(_store.EntryDirectory(entry.Key), WeightsTier.FolderPrefix + w.Key)))
                .FirstOrDefault(r => r is not null) is { } weights ? $"{CorruptPrefix}{weights}" : null;
            if (reason is null) checks.Add(new EntryCheck(entry.Key, EntryCheck.Ok, null, false));
            else if (!reason.StartsWith(CorruptPrefix, StringComparison.Ordinal)) checks.Add(new EntryCheck(entry.Key, EntryCheck.Unreadable, reason, false));
            else
            {
                var problem = reason[CorruptPrefix.Length..];
                checks.Add(new EntryCheck(entry.Key, EntryCheck.Corrupt, problem, quarantine && _store.Corrupt(entry.Key, problem).Quarantined));
            }
        }
        return checks;
    }

    /// <summary>Removes least recently used entries until the cache fits <paramref name="maxBytes"/>.</summary>
    public IReadOnlyList<RemovedEntry> Prune(long maxBytes)
    {
        var sizes = Entries().ToDictionary(e => e.Key, e => e.Bytes, StringComparer.Ordinal);
        return _store.Prune(maxBytes).Select(key => new RemovedEntry(key, sizes.GetValueOrDefault(key))).ToList();
    }

    /// <summary>Removes every entry, the quarantine, staging leftovers of dead processes and every lock no process holds.</summary>
    public ClearResult Clear()
    {
        if (!Directory.Exists(Settings.Root)) return new ClearResult(0, 0, 0, 0, 0);
        var entries = Entries();
        foreach (var entry in entries) _store.Remove(entry.Key);

        var quarantine = Path.Combine(Settings.Root, "quarantine");
        var quarantined = Directory.Exists(quarantine) ? Directory.EnumerateFileSystemEntries(quarantine).Count() : 0;
        if (Directory.Exists(quarantine)) Directory.Delete(quarantine, recursive: true);

        var leftoversBefore = Leftovers();
        _store.CleanStagingLeftovers();
        var leftovers = leftoversBefore - Leftovers();

        var locks = 0;
        var lockDirectory = Path.Combine(Settings.Root, "locks");
        foreach (var path in Directory.Exists(lockDirectory) ? Directory.EnumerateFiles(lockDirectory, "*.lock").ToList() : [])
        {
            // Deleted while held: only a process that opened it in that instant could still lock the unlinked file.
            using var held = CacheLock.Acquire(Settings.Root, Path.GetFileNameWithoutExtension(path), TimeSpan.Zero);
            if (held is null) continue;
            File.Delete(path);
            locks++;
        }
        return new ClearResult(entries.Count, entries.Sum(e => e.Bytes), quarantined, leftovers, locks);
    }

    /// <summary>The counts every run persists in &lt;root&gt;/stats.json.</summary>
    public CacheStatistics Stats() => CacheStats.Read(Settings.Root);

    // The miss reason a restore gives a corrupt entry (SnapshotStore.Corrupt).
    private const string CorruptPrefix = "corrupt entry: ";

    private int Leftovers() => !Directory.Exists(Settings.PipelineDirectory) ? 0
        : Directory.EnumerateDirectories(Settings.PipelineDirectory, ".staging-*").Count() + Directory.EnumerateDirectories(Settings.PipelineDirectory, ".trash-*").Count();
}

/// <summary>The outcome of verifying one entry: <see cref="Status"/> is "ok", "corrupt" or "unreadable" (an I/O error).</summary>
public sealed record EntryCheck(string Key, string Status, string? Problem, bool Quarantined)
{
    public const string Ok = "ok";
    public const string Corrupt = "corrupt";
    public const string Unreadable = "unreadable";
}

/// <summary>An entry removed by pruning, with the bytes it took.</summary>
public sealed record RemovedEntry(string Key, long Bytes);

/// <summary>What `kiln cache clear` removed.</summary>
public sealed record ClearResult(int Entries, long Bytes, int Quarantined, int StagingLeftovers, int Locks);
