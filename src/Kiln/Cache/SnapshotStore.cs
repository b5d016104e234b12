using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// The entries under &lt;root&gt;/pipeline/&lt;key&gt;/: durable publication (staging folder, fsync,
/// manifest last, atomic rename), validated restore (schema versions, key, sizes, SHA-256, safe file
/// names, registered ops, graph verifier), quarantine of corrupt entries, listing and LRU pruning.
/// <paramref name="saveProgress"/> hears each step of a save as it is done.
/// </summary>
public sealed class SnapshotStore(CacheSettings settings, IProgress<SaveProgress>? saveProgress = null)
{
    public const string ManifestFile = "manifest.json";

    public CacheSettings Settings { get; } = settings;

    public string EntryDirectory(string key) => Path.Combine(Settings.PipelineDirectory, key);

    public static string RankDirectory(int rank) => $"rank_{rank}";

    /// <summary>
    /// Reads and validates the entry for <paramref name="key"/>; a corrupt entry is a miss marked
    /// <see cref="RestoreOutcome.Corrupt"/>, quarantined here unless <paramref name="quarantine"/> is false (ranks
    /// quarantine only once all have tried it). With a <paramref name="model"/>, the restored graph must also fit
    /// it (<see cref="ModelRecord"/>); <paramref name="weightsBound"/> says the snapshot point comes after load_weights.
    /// </summary>
    public RestoreOutcome TryRestore(SnapshotKey key, int rank, OpRegistry registry, ModelRecord? model = null, bool weightsBound = false,
        bool quarantine = true)
    {
        var directory = EntryDirectory(key.Key);
        RestoreOutcome Rejected(string reason) =>
            quarantine ? Corrupt(key.Key, reason) : RestoreOutcome.Miss($"corrupt entry: {reason}") with { Corrupt = true };
        try
        {
            // Nothing below the root is followed if it is a link: pipeline/ and the entry are looked at, not through.
            if (FileStatus.OfPath(Settings.PipelineDirectory) is { IsDirectory: false } pipeline)
                return RestoreOutcome.Miss($"untrusted cache: {Settings.PipelineDirectory} is {pipeline.Kind}, not a directory");
            if (FileStatus.OfPath(directory) is not { } entry) return RestoreOutcome.Miss(RestoreOutcome.NoEntry);
            if (!entry.IsDirectory) return Rejected($"the entry is {entry.Kind}, not a directory");
            if (!Settings.TrustSharedRoot && RootTrust.CheckBelowRoot(directory) is { } distrust) return RestoreOutcome.Miss($"untrusted entry: {distrust}");

            var manifest = ReadManifest(directory);
            if (manifest.SchemaVersion != SnapshotKeys.SnapshotSchemaVersion || manifest.IrSchemaVersion != GraphSerializer.SchemaVersion
                || manifest.RecipeSchemaVersion != LoadRecipe.SchemaVersion)
            {
                return Rejected($"schema version (entry snapshot={manifest.SchemaVersion} ir={manifest.IrSchemaVersion} " +
                    $"recipe={manifest.RecipeSchemaVersion}; this Kiln {SnapshotKeys.SnapshotSchemaVersion}/{GraphSerializer.SchemaVersion}/{LoadRecipe.SchemaVersion})");
            }
            if (manifest.Key != key.Key) return Rejected("manifest key differs from the entry's name");
            // Before sharding the graph is the same on every rank (the key has no layout): any world size
            // may restore rank 0's snapshot.
            var source = key.Components.Any(c => c.Name == SnapshotKeys.LayoutComponent) ? rank : 0;
            var (graphFile, buffersFile) = ($"{RankDirectory(source)}/{SnapshotFiles.GraphFile}", $"{RankDirectory(source)}/{SnapshotFiles.BuffersFile}");
            foreach (var relative in new[] { graphFile, buffersFile })
            {
                if (!manifest.Files.Any(f => f.Path == relative)) throw new CorruptEntryException($"{relative} is not in the manifest");
            }
            // This rank's files are read once: checked, then parsed from the same bytes.
            var contents = VerifyFiles(directory, manifest, keep: [graphFile, buffersFile], Settings.TrustSharedRoot);
            var graph = SnapshotFiles.Read(contents[graphFile], contents[buffersFile], registry);
            if (model?.Mismatch(graph, weightsBound) is { } mismatch) return Rejected($"the graph does not fit this model: {mismatch}");
            if (Settings.Mode != CacheMode.ReadOnly) TouchLastUse(directory);
            return RestoreOutcome.Restored(graph, manifest);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return RestoreOutcome.Miss($"unreadable entry: {e.Message}");
        }
        catch (Exception e) when (e is CorruptEntryException or GraphException or KilnException or JsonException)
        {
            return Rejected(e.Message);
        }
        catch (Exception e)
        {
            // Any other failure to read the entry (a null where the format has none, a value out of range)
            // is also corruption: nothing a cache directory contains may fail the run.
            return Rejected($"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Saves this rank's snapshot and, if every rank saved, publishes the entry atomically. Returns
    /// false (leaving no visible entry) when any rank failed or another process published first.
    /// </summary>
    public bool Save(SnapshotKey key, PointInfo point, ModelGraph graph, double compileMs, ICommunicator ranks)
    {
        var staging = Path.Combine(Settings.PipelineDirectory, ranks.Broadcast($".staging-{key.Short}-{Environment.ProcessId}-{Guid.NewGuid():N}"));
        var saved = false;
        SaveFailed = null;
        IReadOnlyList<ManifestFile> written = [];
        try
        {
            PrivateFiles.CreateDirectory(Path.Combine(staging, RankDirectory(ranks.Rank)));
            ReportStep(key, SaveStep.Staged);
            written = SnapshotFiles.Write(Path.Combine(staging, RankDirectory(ranks.Rank)), graph)
                .Select(f => f with { Path = $"{RankDirectory(ranks.Rank)}/{f.Path}" }).ToList();
            ReportStep(key, SaveStep.FilesWritten);
            DurableFiles.SyncDirectory(Path.Combine(staging, RankDirectory(ranks.Rank)));
            saved = true;
        }
        catch (Exception e)
        {
            // Any failure (I/O, or a graph the writer rejects) must still reach the vote below: a rank that
            // left here early would leave the others waiting in the collective forever.
            SaveFailed = e.Message;
        }
        var everyRankSaved = ranks.AllAgree(saved);
        var published = false;
        if (ranks.Rank == 0)
        {
            published = everyRankSaved && Publish(key, point, staging, compileMs, ranks.Size, written);
            if (!published) DeleteQuietly(staging);
        }
        return ranks.AllAgree(ranks.Rank != 0 || published);
    }

    /// <summary>Why the last save failed on this rank (an I/O error), for the warning.</summary>
    public string? SaveFailed { get; private set; }

    // Files this rank wrote come described (hashed as written); other ranks' files are read and hashed here.
    private bool Publish(SnapshotKey key, PointInfo point, string staging, double compileMs, int worldSize, IReadOnlyList<ManifestFile> written)
    {
        try
        {
            var known = written.ToDictionary(f => f.Path, StringComparer.Ordinal);
            var files = Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories)
                .Select(path => known.GetValueOrDefault(Path.GetRelativePath(staging, path).Replace('\\', '/')) ?? Describe(staging, path))
                .OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
            var manifest = new SnapshotManifest(SnapshotKeys.SnapshotSchemaVersion, GraphSerializer.SchemaVersion, LoadRecipe.SchemaVersion,
                key.Key, point, [.. key.Components], files, ToolVersion, worldSize, DateTimeOffset.UtcNow, compileMs);
            DurableFiles.WriteAllBytes(Path.Combine(staging, ManifestFile),
                Encoding.UTF8.GetBytes(JsonSerializer.Serialize(manifest, CacheJsonContext.Default.SnapshotManifest)));
            ReportStep(key, SaveStep.ManifestWritten);
            DurableFiles.SyncDirectory(staging);
            // Everything inside is on disk before the rename, so a rename that survives a crash shows a
            // complete entry. The rename itself is not flushed: losing it loses a cache entry, never data.
            Directory.Move(staging, EntryDirectory(key.Key));
            ReportStep(key, SaveStep.Published);
            return true;
        }
        catch (IOException) when (Directory.Exists(EntryDirectory(key.Key)))
        {
            return false; // another process published the same key first: its entry is as good as ours
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            SaveFailed = e.Message;
            return false;
        }
    }

    /// <summary>
    /// Every published entry with its manifest (null if unreadable), size and last use. An entry that cannot
    /// be read (a folder mode 000, a link) is still listed, with what could be learned, so that `cache verify`
    /// reports it and pruning can remove it.
    /// </summary>
    public IReadOnlyList<EntrySummary> List()
    {
        if (!Directory.Exists(Settings.PipelineDirectory)) return [];
        return Directory.EnumerateFileSystemEntries(Settings.PipelineDirectory)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Select(d =>
            {
                SnapshotManifest? manifest = null;
                try { manifest = ReadManifest(d); } catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or CorruptEntryException) { }
                return new EntrySummary(Path.GetFileName(d), manifest, SizeOf(d), LastUseOf(d), WeightsOf(d));
            })
            .OrderByDescending(e => e.LastUse).ToList();
    }

    // The entry's weights tier (WeightsTier): each weights folder with its manifest (null if unreadable) and size.
    private static IReadOnlyList<WeightsSummary> WeightsOf(string entry)
    {
        if (FileStatus.OfPath(entry) is not { IsDirectory: true }) return [];
        try
        {
            return Directory.EnumerateDirectories(entry, WeightsTier.FolderPrefix + "*").Order(StringComparer.Ordinal).Select(folder =>
            {
                WeightsManifest? manifest = null;
                try { manifest = WeightsTier.ReadManifest(folder); } catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptEntryException) { }
                return new WeightsSummary(Path.GetFileName(folder)[WeightsTier.FolderPrefix.Length..], manifest, SizeOf(folder));
            }).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    // Bytes of the entry's files, links not followed; what cannot be read counts as nothing.
    private static long SizeOf(string entry)
    {
        if (FileStatus.OfPath(entry) is not { IsDirectory: true }) return 0;
        try
        {
            return new DirectoryInfo(entry).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint })
                .Sum(f => f.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    // The manifest's modification time (see TouchLastUse), else the entry's own; a link's, not its target's.
    private static DateTime LastUseOf(string entry)
    {
        try
        {
            var manifest = new FileInfo(Path.Combine(entry, ManifestFile));
            return manifest.Exists ? manifest.LastWriteTimeUtc : new FileInfo(entry).LastWriteTimeUtc;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new FileInfo(entry).LastWriteTimeUtc;
        }
    }

    /// <summary>Removes least recently used entries until the total is within <paramref name="maxBytes"/>; returns the keys removed.</summary>
    public IReadOnlyList<string> Prune(long maxBytes)
    {
        var entries = List();
        var total = entries.Sum(e => e.Bytes);
        var removed = new List<string>();
        foreach (var entry in entries.Reverse())
        {
            if (total <= maxBytes) break;
            Remove(entry.Key);
            total -= entry.Bytes;
            removed.Add(entry.Key);
        }
        return removed;
    }

    /// <summary>Removes an entry: renamed out of sight first, so no reader sees it half-deleted.</summary>
    public void Remove(string key)
    {
        var trash = Path.Combine(Settings.PipelineDirectory, $".trash-{key[..Math.Min(16, key.Length)]}-{Guid.NewGuid():N}");
        if (FileStatus.OfPath(EntryDirectory(key)) is null) return;
        try
        {
            DurableFiles.Rename(EntryDirectory(key), trash);
        }
        catch (IOException) when (FileStatus.OfPath(EntryDirectory(key)) is null)
        {
            return; // removed meanwhile by another process
        }
        DeleteQuietly(trash);
    }

    /// <summary>Moves a corrupt entry to &lt;root&gt;/quarantine for inspection; returns the miss.</summary>
    public RestoreOutcome Corrupt(string key, string reason) =>
        RestoreOutcome.Miss($"corrupt entry: {reason}", Quarantine(key)) with { Corrupt = true };

    /// <summary>Moves the entry <paramref name="key"/> to &lt;root&gt;/quarantine; false when it could not (read-only, gone).</summary>
    public bool Quarantine(string key)
    {
        if (Settings.Mode == CacheMode.ReadOnly) return false;
        try
        {
            var quarantine = Path.Combine(Settings.Root, "quarantine");
            PrivateFiles.CreateDirectory(quarantine);
            // rename(2) moves the entry whatever it is (a link is moved, not followed).
            DurableFiles.Rename(EntryDirectory(key), Path.Combine(quarantine, $"{key}-{DateTime.UtcNow:yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}"[..Math.Min(120, key.Length + 48)]));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unwritable root cannot quarantine (or another rank moved it first); the entry stays a miss.
            return false;
        }
    }

    /// <summary>Deletes staging folders left by processes that no longer run.</summary>
    public void CleanStagingLeftovers()
    {
        if (!Directory.Exists(Settings.PipelineDirectory)) return;
        foreach (var directory in Directory.EnumerateDirectories(Settings.PipelineDirectory, ".staging-*"))
        {
            var parts = Path.GetFileName(directory).Split('-');
            if (parts.Length >= 4 && int.TryParse(parts[2], out var pid) && !IsRunning(pid)) DeleteQuietly(directory);
        }
        foreach (var directory in Directory.EnumerateDirectories(Settings.PipelineDirectory, ".trash-*")) DeleteQuietly(directory);
    }

    /// <summary>Largest world size a manifest may record.</summary>
    public const int MaxWorldSize = 4096;

    /// <summary>
    /// Reads an entry's manifest strictly: a regular file (no link, FIFO or device), bounded size, strict
    /// UTF-8 JSON without duplicated properties, and fields in range; any problem is a <see cref="CorruptEntryException"/>.
    /// </summary>
    public static SnapshotManifest ReadManifest(string directory)
    {
        var manifest = ManifestReader.Read(directory, ManifestFile, CacheJsonContext.Default.SnapshotManifest);
        if (manifest.WorldSize is < 1 or > MaxWorldSize) throw new CorruptEntryException($"{ManifestFile}: world_size {manifest.WorldSize} is not in 1..{MaxWorldSize}");
        if (!double.IsFinite(manifest.CompileMs) || manifest.CompileMs < 0) throw new CorruptEntryException($"{ManifestFile}: compile_ms {manifest.CompileMs} is not a duration");
        // The reader refuses a null property but not a null inside a list.
        if (manifest.Components.Contains(null!) || manifest.Files.Contains(null!)) throw new CorruptEntryException($"{ManifestFile}: null in components or files");
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in manifest.Files)
        {
            if (!paths.Add(file.Path)) throw new CorruptEntryException($"{ManifestFile}: file '{file.Path}' is listed twice");
            if (file.Bytes < 0) throw new CorruptEntryException($"{ManifestFile}: file '{file.Path}' has a negative size");
            if (file.Sha256.Length != 64 || !file.Sha256.All(char.IsAsciiHexDigitLower)) throw new CorruptEntryException($"{ManifestFile}: file '{file.Path}': sha256 is not 64 lowercase hex digits");
        }
        return manifest;
    }

    /// <summary>Checks each file the manifest names: a safe relative path, no link, a regular file, the recorded size and SHA-256.</summary>
    public static void VerifyFiles(string directory, SnapshotManifest manifest, bool trustShared = false) => VerifyFiles(directory, manifest, keep: [], trustShared);

    /// <summary>
    /// Checks every file as <see cref="VerifyFiles(string, SnapshotManifest, bool)"/> does and returns the bytes of
    /// the files named in <paramref name="keep"/>, exactly as they were checked (read once, never re-read).
    /// The folders between the entry and a file must be real, trusted (unless <paramref name="trustShared"/>) directories.
    /// </summary>
    public static Dictionary<string, byte[]> VerifyFiles(string directory, SnapshotManifest manifest, IReadOnlyCollection<string> keep, bool trustShared)
    {
        var contents = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var root = Path.GetFullPath(directory) + Path.DirectorySeparatorChar;
        foreach (var file in manifest.Files)
        {
            if (file.Path.Length == 0 || Path.IsPathRooted(file.Path) || file.Path.Split('/', '\\').Any(p => p is ".." or "." or "") || file.Path.Contains('\0'))
                throw new CorruptEntryException($"unsafe file name '{file.Path}' in the manifest");
            var full = Path.GetFullPath(Path.Combine(directory, file.Path));
            if (!full.StartsWith(root, StringComparison.Ordinal)) throw new CorruptEntryException($"file '{file.Path}' is outside the entry");
            for (var folder = Path.GetDirectoryName(full)!; folder.Length > root.Length; folder = Path.GetDirectoryName(folder)!)
            {
                var status = FileStatus.OfPath(folder) ?? throw new CorruptEntryException($"{file.Path} is missing");
                if (!status.IsDirectory) throw new CorruptEntryException($"'{file.Path}' passes through {status.Kind}");
                if (!trustShared && RootTrust.CheckBelowRoot(folder) is { } distrust) throw new CorruptEntryException($"untrusted folder: {distrust}");
            }
            using var stream = FileStatus.OpenRegularFile(full, file.Path);
            if (stream.Length != file.Bytes) throw new CorruptEntryException($"{file.Path} has {stream.Length} bytes, the manifest says {file.Bytes}");
            string digest;
            if (keep.Contains(file.Path))
            {
                var bytes = contents[file.Path] = ReadExactly(stream, file);
                digest = Convert.ToHexStringLower(SHA256.HashData(bytes));
            }
            else
            {
                digest = Convert.ToHexStringLower(SHA256.HashData(stream));
            }
            if (digest != file.Sha256) throw new CorruptEntryException($"{file.Path}: checksum mismatch");
        }
        return contents;
    }

    // The file's bytes, which must be as many as the manifest says. The array is not zeroed first: every
    // byte is read into it (tens of MB for the RoPE tables, where zeroing is a visible part of a restore).
    private static byte[] ReadExactly(FileStream stream, ManifestFile file)
    {
        if (file.Bytes > Array.MaxLength) throw new CorruptEntryException($"{file.Path}: {file.Bytes} bytes is more than one array can hold");
        var bytes = GC.AllocateUninitializedArray<byte>((int)file.Bytes);
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static ManifestFile Describe(string root, string path)
    {
        using var stream = File.OpenRead(path);
        return new ManifestFile(Path.GetRelativePath(root, path).Replace('\\', '/'), stream.Length, Convert.ToHexStringLower(SHA256.HashData(stream)));
    }

    // The manifest's modification time is the entry's last use (its content never changes).
    private static void TouchLastUse(string directory)
    {
        try { File.SetLastWriteTimeUtc(Path.Combine(directory, ManifestFile), DateTime.UtcNow); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private void ReportStep(SnapshotKey key, SaveStep step) => saveProgress?.Report(new SaveProgress($"snapshot {key.Short}", step));

    private static bool IsRunning(int pid)
    {
        try { return !System.Diagnostics.Process.GetProcessById(pid).HasExited; }
        catch (ArgumentException) { return false; }
    }

    // A directory with what it holds; anything else (a link, a file where an entry should be) by itself.
    internal static void DeleteQuietly(string directory)
    {
        try
        {
            if (FileStatus.OfPath(directory) is { IsDirectory: true }) Directory.Delete(directory, recursive: true);
            else File.Delete(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static string ToolVersion => typeof(SnapshotStore).Assembly
        .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
        .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
}

/// <summary>One published entry, as `kiln cache list` shows it.</summary>
public sealed record EntrySummary(string Key, SnapshotManifest? Manifest, long Bytes, DateTime LastUse, IReadOnlyList<WeightsSummary> Weights)
{
    /// <summary>Bytes of the entry's weights tier (included in <see cref="Bytes"/>).</summary>
    public long WeightsBytes => Weights.Sum(w => w.Bytes);
}

/// <summary>A weights folder of an entry: its key, manifest (null if unreadable) and size.</summary>
public sealed record WeightsSummary(string Key, WeightsManifest? Manifest, long Bytes);

/// <summary>An entry whose files do not match its manifest or the format.</summary>
public sealed class CorruptEntryException(string message) : Exception(message);
