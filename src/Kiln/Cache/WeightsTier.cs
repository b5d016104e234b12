using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// The weights tier of a final snapshot entry: the weight products of the load recipes (fused q/k/v and
/// gate/up, casts) saved per rank in &lt;entry&gt;/weights-&lt;key&gt;/rank_&lt;r&gt;/weights.safetensors
/// (<see cref="WeightsFile"/>) and mapped by a later start instead of computed. The key is the graph
/// entry's key and the content hash of every checkpoint file a product reads (<see cref="ContentHashes"/>).
/// As for graphs, a problem is a miss: a corrupt folder is quarantined, the products computed, saved
/// again (staging, fsync, manifest last, atomic rename), and every rank takes the same path.
/// <paramref name="saveProgress"/> hears each step of a save as it is done.
/// </summary>
public sealed class WeightsTier(CacheSettings settings, string graphKey, ICommunicator ranks, IProgress<SaveProgress>? saveProgress = null)
{
    /// <summary>2: files hashed in chunks (<see cref="ChunkedHash"/>).</summary>
    public const int SchemaVersion = 2;
    public const string ManifestFile = "weights.json";
    public const string DataFile = "weights.safetensors";
    public const string FolderPrefix = "weights-";

    private readonly SnapshotStore _store = new(settings);

    /// <summary>What the last <see cref="Load"/> did; null when the graph has no weight product.</summary>
    public WeightsReport? Report { get; private set; }

    private bool Writable => settings.Mode == CacheMode.ReadWrite;

    private string Entry => _store.EntryDirectory(graphKey);

    /// <summary>
    /// Every parameter of <paramref name="graph"/>: the products mapped from the cache on a hit, else computed
    /// (and saved); <paramref name="progress"/> hears how far computing their quantize steps is. With
    /// <paramref name="saveInBackground"/> a single process's save of computed products (hashing, fsync, publish) runs on
    /// another thread, so that the caller can create its session meanwhile: <see cref="FinishSaving"/> then waits for it,
    /// and <see cref="Report"/> is set only after that.
    /// </summary>
    public WeightSet Load(Checkpoint checkpoint, ModelGraph graph, IProgress<QuantizeProgress>? progress = null, bool saveInBackground = false)
    {
        var clock = Stopwatch.StartNew();
        var warnings = new List<string>();
        var sources = SourceFiles(checkpoint, graph);
        // Every rank must take the same path through the collectives below.
        if (!ranks.AllAgree(sources.Count > 0 && EntryExists()))
        {
            Report = sources.Count == 0 ? null : WeightsReport.Off("no graph entry to keep them in");
            return WeightSet.Compute(checkpoint, graph, progress: progress);
        }
        // The key needs the checkpoint's content hash; for a file the memo does not know, that reads all of it.
        // With no weights in the entry there is nothing to look up, so the products are computed meanwhile.
        var lookUp = ranks.AllAgree(OtherFolders(null).Any());
        // A look-up waits for the hash, which then has every core; beside the products it leaves them one.
        var hashThreads = lookUp ? 0 : ChunkedHash.BesideOtherWork;
        var hashing = lookUp || Writable ? Task.Run(() => Identify(checkpoint, sources, hashThreads)) : null;
        (string Key, List<ContentComponent> Content)? identity = null;
        string? reason = "no weights in the entry";
        var quarantined = false;
        if (lookUp)
        {
            identity = AgreedIdentity(hashing!, warnings);
            if (identity is not { } id)
            {
                Report = WeightsReport.Off("checkpoint not hashed, or the ranks disagree on its content", warnings);
                return WeightSet.Compute(checkpoint, graph, progress: progress);
            }
            (var restored, reason, var corrupt) = TryRestore(checkpoint, graph, FolderOf(id.Key), id.Key, id.Content);
            var everyRankRestored = ranks.AllAgree(restored is not null);
            // A corrupt folder is quarantined only once every rank has tried it: moved sooner, another rank would
            // find it gone and take the miss for an absent entry.
            if (corrupt) quarantined = Quarantine(FolderOf(id.Key));
            if (everyRankRestored)
            {
                var mapped = restored!.Parameters.Where(p => graph.Parameters.Any(s => s.Name == p.Name && WeightSet.MayBeProduct(s)) && !p.IsCopy).ToList();
                Report = new WeightsReport("hit", null, id.Key, clock.Elapsed.TotalMilliseconds, mapped.Count, mapped.Sum(p => p.ByteLength), false, warnings);
                RecordStats(hit: true, null, quarantined, warnings);
                return restored;
            }
            restored?.Dispose();
            reason ??= "another rank could not restore";
        }

        // A miss: the products are computed, straight into the file that saves them when there is one.
        var products = graph.Parameters.Where(WeightSet.MayBeProduct).ToList();
        var (staging, file) = Writable ? Stage(products, warnings) : (null, null);
        // The products' file is hashed as they are written, once the checkpoint's hash has left the core to it.
        file?.HashAsWritten(after: hashing);
        WeightSet weights;
        try
        {
            weights = WeightSet.Compute(checkpoint, graph, mapping: file, destinations: file?.Places, progress: progress, made: file is null ? null : file.Written);
        }
        catch
        {
            // The checkpoint's own error is the run's; the half-made file goes with its staging folder.
            if (staging is not null && ranks.Rank == 0) SnapshotStore.DeleteQuietly(staging);
            throw;
        }
        var made = weights.Parameters.Where(p => products.Any(s => s.Name == p.Name) && (p.IsCopy || file is not null)).ToList();
        // Collectives stay on the calling thread: only a single process saves in the background.
        if (saveInBackground && ranks.Size == 1 && file is not null) _saving = Task.Run(SaveAndReport);
        else SaveAndReport();
        return weights;

        void SaveAndReport()
        {
            var saved = false;
            if (hashing is not null)
            {
                identity ??= AgreedIdentity(hashing, warnings);
                saved = identity is { } id && Save(staging, file, FolderOf(id.Key), id.Key, id.Content, clock.Elapsed.TotalMilliseconds, warnings);
            }
            if (!saved && staging is not null && ranks.Rank == 0) SnapshotStore.DeleteQuietly(staging);
            Report = new WeightsReport("miss", reason, identity?.Key, clock.Elapsed.TotalMilliseconds, made.Count, made.Sum(p => p.ByteLength), saved, warnings);
            RecordStats(hit: false, reason, quarantined, warnings);
        }
    }

    private Task? _saving;

    /// <summary>Waits for a save that <see cref="Load"/> left running in the background, if any; <see cref="Report"/> is set after it.</summary>
    public void FinishSaving()
    {
        var saving = Interlocked.Exchange(ref _saving, null);
        saving?.GetAwaiter().GetResult();
    }

    private string FolderOf(string key) => Path.Combine(Entry, FolderPrefix + key);

    // The key every rank computed, if they all did and agree; a collective.
    private (string Key, List<ContentComponent> Content)? AgreedIdentity(Task<(string Key, List<ContentComponent> Content)> hashing, List<string> warnings)
    {
        (string Key, List<ContentComponent> Content)? identity = null;
        try
        {
            identity = hashing.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or KilnException)
        {
            warnings.Add($"cannot hash the checkpoint ({e.Message}); weights not cached");
        }
        var rankZeros = ranks.Broadcast(identity?.Key ?? "");
        return ranks.AllAgree(identity is { } id && id.Key == rankZeros) ? identity : null;
    }

    /// <summary>
    /// For `kiln cache explain`: whether the entry's saved weights still match the checkpoint's content
    /// ("hit"), or which files changed since ("miss: checkpoint content changed: FILES"); null when the
    /// entry has no weights. Reads the memo but never writes it.
    /// </summary>
    public static string? Explain(CacheSettings settings, EntrySummary entry, Checkpoint checkpoint)
    {
        var manifests = entry.Weights.Select(w => w.Manifest).OfType<WeightsManifest>().ToList();
        if (manifests.Count == 0) return entry.Weights.Count == 0 ? null : "miss: the saved weights are unreadable";
        var files = checkpoint.WeightFiles.Select(f => f.RelativeName).ToHashSet(StringComparer.Ordinal);
        var changed = new List<string>();
        foreach (var manifest in manifests)
        {
            // Only names of this checkpoint's weight files are looked at: a manifest's names are not paths to follow.
            var present = manifest.Content.Where(c => files.Contains(c.File)).ToList();
            var hashes = ContentHashes.Of(settings.Root, present.Select(c => Path.Combine(checkpoint.Directory, c.File)), writable: false);
            changed = manifest.Content.Where(c => !files.Contains(c.File) || hashes[Path.Combine(checkpoint.Directory, c.File)] != c.Xxh3).Select(c => c.File).ToList();
            if (changed.Count == 0) return "hit";
        }
        return $"miss: checkpoint content changed: {string.Join(", ", changed)}";
    }

    private static bool FolderAbsent(string folder)
    {
        try { return FileStatus.OfPath(folder) is null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    // An exception here would leave this rank out of the collective that follows.
    private bool EntryExists()
    {
        try { return FileStatus.OfPath(Entry) is { IsDirectory: true }; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>The weights key: the graph key and each source file's name and content hash.</summary>
    public static string KeyOf(string graphKey, IEnumerable<ContentComponent> content)
    {
        var text = new StringBuilder($"kiln-weights/{SchemaVersion}\n{graphKey}\n");
        foreach (var c in content) text.Append(c.File).Append(' ').Append(c.Xxh3).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// The checkpoint files read by a parameter that may be a product, with their content hashes (memoized),
    /// sorted by name; and the key they form with the graph key.
    /// </summary>
    public (string Key, List<ContentComponent> Content) Identify(Checkpoint checkpoint, IReadOnlyCollection<string> sources, int threads = 0)
    {
        // The files are hashed by path, the products made from the checkpoint's open files: a file renamed over one of
        // them since it was opened would give the new file's hash to products of the old (and a hit, the new file's
        // products beside the old one's views). Checked before and after: renaming a file changes its ctime too.
        EnsureOpenedFiles(checkpoint, sources);
        var hashes = ContentHashes.Of(settings.Root, sources, Writable, threads);
        EnsureOpenedFiles(checkpoint, sources);
        var content = sources.Select(path => new ContentComponent(Path.GetRelativePath(checkpoint.Directory, path).Replace('\\', '/'), hashes[path]))
            .OrderBy(c => c.File, StringComparer.Ordinal).ToList();
        return (KeyOf(graphKey, content), content);
    }

    private static void EnsureOpenedFiles(Checkpoint checkpoint, IReadOnlyCollection<string> sources)
    {
        foreach (var path in sources)
            if (FileIdentity.Of(path) != FileIdentity.Of(checkpoint.FileAt(path).Handle))
                throw new IOException($"{Path.GetFileName(path)} was replaced while the model loaded");
    }

    /// <summary>Paths of the checkpoint files that parameters which may be products read from.</summary>
    public static IReadOnlyCollection<string> SourceFiles(Checkpoint checkpoint, ModelGraph graph) =>
        graph.Parameters.Where(WeightSet.MayBeProduct)
            .SelectMany(p => p.Recipe.Sources)
            .Where(checkpoint.Tensors.ContainsKey)
            .Select(name => checkpoint.FileOf(checkpoint.Tensors[name]).Path)
            .Distinct(StringComparer.Ordinal).OrderBy(p => p, StringComparer.Ordinal).ToList();

    // Maps this rank's file, checked against the manifest (size, XXH3-128) and the graph (every tensor a
    // product of it, with its dtype and shape); the other parameters are computed (views of the checkpoint).
    // Corrupt: the folder failed a check and is to be quarantined.
    private (WeightSet? Weights, string? Reason, bool Corrupt) TryRestore(Checkpoint checkpoint, ModelGraph graph, string folder, string key,
        List<ContentComponent> content)
    {
        SafetensorsFile? file = null;
        try
        {
            if (FileStatus.OfPath(folder) is not { } status) return (null, AbsentReason(content), false);
            if (!status.IsDirectory) throw new CorruptEntryException($"{Path.GetFileName(folder)} is {status.Kind}, not a directory");
            if (!settings.TrustSharedRoot && RootTrust.CheckBelowRoot(folder) is { } distrust) return (null, $"untrusted weights: {distrust}", false);
            var manifest = ReadManifest(folder);
            if (manifest.SchemaVersion != SchemaVersion) throw new CorruptEntryException($"{ManifestFile}: schema version {manifest.SchemaVersion}, this Kiln {SchemaVersion}");
            if (manifest.Key != key || manifest.GraphKey != graphKey) throw new CorruptEntryException($"{ManifestFile}: key differs from the folder's name");
            var rankFolder = Path.Combine(folder, SnapshotStore.RankDirectory(ranks.Rank));
            var relative = $"{SnapshotStore.RankDirectory(ranks.Rank)}/{DataFile}";
            var record = manifest.Files.FirstOrDefault(f => f.Path == relative) ?? throw new CorruptEntryException($"{relative} is not in {ManifestFile}");
            if (FileStatus.OfPath(rankFolder) is not { IsDirectory: true }) throw new CorruptEntryException($"{SnapshotStore.RankDirectory(ranks.Rank)} is missing or not a directory");
            if (!settings.TrustSharedRoot && RootTrust.CheckBelowRoot(rankFolder) is { } rankDistrust) throw new CorruptEntryException($"untrusted folder: {rankDistrust}");
            var stream = FileStatus.OpenRegularFile(Path.Combine(folder, relative), relative);
            if (stream.Length != record.Bytes)
            {
                stream.Dispose();
                throw new CorruptEntryException($"{relative} has {stream.Length} bytes, {ManifestFile} says {record.Bytes}");
            }
            // A file unchanged since it was written or last checked (same identity: any write changes its ctime)
            // is not read again; any other is hashed whole.
            var identity = FileIdentity.Of(stream.SafeFileHandle);
            var checkedBefore = ContentHashes.Known(settings.Root, identity) == record.Xxh3;
            file = SafetensorsFile.Open(relative, stream);
            if (checkedBefore) WeightsFile.Populate(file);
            else
            {
                if (WeightsFile.Hash(file) != record.Xxh3) throw new CorruptEntryException($"{relative}: checksum mismatch");
                if (Writable) ContentHashes.Remember(settings.Root, identity, record.Xxh3);
            }

            var specs = graph.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
            var given = new Dictionary<string, ParameterData>(StringComparer.Ordinal);
            foreach (var tensor in WeightsFile.Products(file))
            {
                if (!specs.TryGetValue(tensor.Name, out var spec) || !WeightSet.MayBeProduct(spec))
                    throw new CorruptEntryException($"{relative}: {tensor.Name} is not a weight product of the graph");
                var shape = spec.Value.Shape.ToSizes();
                if (tensor.DType != spec.Value.DType || !tensor.Shape.SequenceEqual(shape))
                    throw new CorruptEntryException($"{relative}: {tensor.Name} is {tensor.DType.Name()} {RecipeShapes.Format(tensor.Shape)}, the graph has {spec.Value.DType.Name()} {RecipeShapes.Format(shape)}");
                var pointer = file.GetPointer(tensor);
                if (pointer % NativeBuffer.Alignment != 0) throw new CorruptEntryException($"{relative}: {tensor.Name} is not aligned to {NativeBuffer.Alignment} bytes");
                given[tensor.Name] = new ParameterData(tensor.Name, tensor.DType, tensor.Shape, pointer, tensor.ByteLength, owner: null);
            }
            var weights = WeightSet.Compute(checkpoint, graph, given, file);
            file = null; // owned by the weight set now
            return (weights, null, false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"unreadable weights: {e.Message}", false);
        }
        catch (Exception e)
        {
            // Anything else a weights folder holds (a bad header, a wrong checksum, a value out of range) is corruption.
            var reason = e is CorruptEntryException or KilnException or JsonException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            return (null, $"corrupt weights: {OneLine(reason)}", true);
        }
        finally
        {
            file?.Dispose();
        }
    }

    // Why no folder has this key: the checkpoint's content changed since the entry's weights were saved, or none were.
    private string AbsentReason(List<ContentComponent> content)
    {
        foreach (var other in OtherFolders(null))
        {
            try
            {
                var manifest = ReadManifest(other);
                var now = content.ToDictionary(c => c.File, c => c.Xxh3, StringComparer.Ordinal);
                var changed = manifest.Content.Where(c => now.GetValueOrDefault(c.File) != c.Xxh3).Select(c => c.File)
                    .Concat(content.Where(c => manifest.Content.All(m => m.File != c.File)).Select(c => c.File)).Distinct().ToList();
                if (changed.Count > 0) return $"checkpoint content changed: {string.Join(", ", changed)}";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptEntryException) { }
        }
        return "no weights in the entry";
    }

    /// <summary>The weights folders of the entry, except <paramref name="keep"/>.</summary>
    private IEnumerable<string> OtherFolders(string? keep)
    {
        try
        {
            return Directory.EnumerateDirectories(Entry, FolderPrefix + "*").Where(d => d != keep).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    // This rank's staging folder (named by rank 0: a collective) and the products' file in it, mapped for the
    // recipes to write into; (staging, null) when it cannot be made (the run goes on without saving).
    private (string? Staging, StagedWeightsFile? File) Stage(IReadOnlyList<ParameterSpec> products, List<string> warnings)
    {
        var staging = Path.Combine(settings.PipelineDirectory, ranks.Broadcast($".staging-{graphKey[..16]}.weights-{Environment.ProcessId}-{Guid.NewGuid():N}"));
        var rankName = SnapshotStore.RankDirectory(ranks.Rank);
        try
        {
            PrivateFiles.CreateDirectory(Path.Combine(staging, rankName));
            ReportStep(SaveStep.Staged);
            var layout = products.Select(p => new WeightsFile.Product(p.Name, p.Value.DType, p.Value.Shape.ToSizes(), p.Value.Shape.ToSizes().Aggregate(1L, (a, b) => a * b) * p.Value.DType.ByteSize())).ToList();
            return (staging, StagedWeightsFile.Create(Path.Combine(staging, rankName, DataFile), $"{rankName}/{DataFile}", layout));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"could not save the weights: {e.Message}; running without them");
            return (staging, null);
        }
    }

    // Publishes the staged products under their key once every rank has its file complete; a collective.
    private bool Save(string? staging, StagedWeightsFile? file, string folder, string key, List<ContentComponent> content, double computeMs, List<string> warnings)
    {
        if (!ranks.AllAgree(file is not null && EntryExists() && FolderAbsent(folder))) return false;
        var rankName = SnapshotStore.RankDirectory(ranks.Rank);
        WeightsFileRecord? written = null;
        string? failure = null;
        try
        {
            written = file!.Complete();
            ReportStep(SaveStep.FilesWritten);
            DurableFiles.SyncDirectory(Path.Combine(staging!, rankName));
        }
        catch (Exception e)
        {
            // Any failure must still reach the vote below, or the other ranks would wait forever.
            failure = e.Message;
        }
        var everyRankSaved = ranks.AllAgree(written is not null);
        var published = false;
        if (ranks.Rank == 0 && everyRankSaved) published = Publish(staging!, folder, key, content, computeMs, written!, ref failure);
        if (failure is not null) warnings.Add($"could not save the weights: {failure}; running without them");
        var all = ranks.AllAgree(ranks.Rank != 0 || published);
        if (all) RememberWritten(Path.Combine(folder, rankName, DataFile), written!.Xxh3, warnings);
        if (all && ranks.Rank == 0)
        {
            // Weights of an earlier content are no use any more: only the current ones stay.
            foreach (var stale in OtherFolders(folder)) Discard(stale);
            _store.Prune(settings.MaxBytes);
        }
        return all;
    }

    // The file as published was hashed as it was written: the next hit need not read it to check it.
    private void RememberWritten(string path, string xxh3, List<string> warnings)
    {
        try { ContentHashes.Remember(settings.Root, FileIdentity.Of(path), xxh3); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { warnings.Add($"could not record the weights' checksum: {e.Message}"); }
    }

    // Other ranks' files are hashed here; this rank's come described (hashed as written).
    private bool Publish(string staging, string folder, string key, List<ContentComponent> content, double computeMs, WeightsFileRecord mine, ref string? failure)
    {
        try
        {
            var files = Enumerable.Range(0, ranks.Size).Select(r => r == ranks.Rank ? mine : Describe(staging, $"{SnapshotStore.RankDirectory(r)}/{DataFile}")).ToList();
            var manifest = new WeightsManifest(SchemaVersion, graphKey, key, content, files, ranks.Size, DateTimeOffset.UtcNow, computeMs);
            DurableFiles.WriteAllBytes(Path.Combine(staging, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, CacheJsonContext.Default.WeightsManifest));
            ReportStep(SaveStep.ManifestWritten);
            DurableFiles.SyncDirectory(staging);
            DurableFiles.Rename(staging, folder);
            ReportStep(SaveStep.Published);
            return true;
        }
        catch (IOException) when (FileStatus.OfPath(folder) is not null)
        {
            return false; // another process published the same weights first
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failure = e.Message;
            return false;
        }
    }

    private static WeightsFileRecord Describe(string staging, string relative)
    {
        var path = Path.Combine(staging, relative);
        return new WeightsFileRecord(relative, new FileInfo(path).Length, ContentHashes.Hash(path));
    }

    /// <summary>
    /// For `kiln cache verify`: null when the folder's manifest reads and every rank file it lists has its
    /// size and XXH3-128, else the problem (naming the folder).
    /// </summary>
    public static string? Check(string folder)
    {
        var name = Path.GetFileName(folder);
        try
        {
            var manifest = ReadManifest(folder);
            for (var rank = 0; rank < manifest.WorldSize; rank++)
            {
                var relative = $"{SnapshotStore.RankDirectory(rank)}/{DataFile}";
                var record = manifest.Files.FirstOrDefault(f => f.Path == relative) ?? throw new CorruptEntryException($"{relative} is not in {ManifestFile}");
                if (FileStatus.OfPath(Path.Combine(folder, SnapshotStore.RankDirectory(rank))) is not { IsDirectory: true })
                    throw new CorruptEntryException($"{SnapshotStore.RankDirectory(rank)} is missing or not a directory");
                using var stream = FileStatus.OpenRegularFile(Path.Combine(folder, relative), relative);
                if (stream.Length != record.Bytes) throw new CorruptEntryException($"{relative} has {stream.Length} bytes, {ManifestFile} says {record.Bytes}");
                if (ContentHashes.Hash(stream) != record.Xxh3) throw new CorruptEntryException($"{relative}: checksum mismatch");
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptEntryException)
        {
            return $"{name}: {OneLine(e.Message)}";
        }
    }

    /// <summary>Reads a weights folder's manifest strictly (a regular file, bounded, strict UTF-8 JSON, fields in range).</summary>
    public static WeightsManifest ReadManifest(string folder)
    {
        var manifest = ManifestReader.Read(folder, ManifestFile, CacheJsonContext.Default.WeightsManifest);
        // The reader refuses a null property but not a null inside a list.
        if (manifest.Files.Contains(null!) || manifest.Content.Contains(null!)) throw new CorruptEntryException($"{ManifestFile}: null in files or content");
        static bool IsXxh3(string hex) => hex.Length == 32 && hex.All(char.IsAsciiHexDigitLower);
        if (manifest.WorldSize is < 1 or > SnapshotStore.MaxWorldSize || !double.IsFinite(manifest.ComputeMs)
            || manifest.Files.Any(f => f.Bytes < 0 || !IsXxh3(f.Xxh3)) || manifest.Content.Any(c => !IsXxh3(c.Xxh3)))
            throw new CorruptEntryException($"{ManifestFile}: a size or hash is out of range");
        return manifest;
    }

    // A corrupt folder is moved to <root>/quarantine (nothing is moved in read-only mode).
    private bool Quarantine(string folder)
    {
        if (!Writable) return false;
        try
        {
            var quarantine = Path.Combine(settings.Root, "quarantine");
            PrivateFiles.CreateDirectory(quarantine);
            DurableFiles.Rename(folder, Path.Combine(quarantine, $"{graphKey[..16]}-weights-{DateTime.UtcNow:yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}"));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void RecordStats(bool hit, string? reason, bool quarantined, List<string> warnings)
    {
        if (!Writable || ranks.Rank != 0) return;
        try { CacheStats.RecordWeights(settings.Root, hit, reason, quarantined); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { warnings.Add($"could not update cache statistics: {e.Message}"); }
    }

    // The staging folder is named before the weights key is known (it needs the checkpoint's hash): the graph key names the save.
    private void ReportStep(SaveStep step) => saveProgress?.Report(new SaveProgress($"weights {graphKey[..16]}", step));

    private static string OneLine(string reason) => new(reason.Select(c => char.IsControl(c) ? ' ' : c).Take(400).ToArray());

    // Renamed out of the entry first, so no reader sees a folder half deleted.
    private void Discard(string folder)
    {
        var trash = Path.Combine(settings.PipelineDirectory, $".trash-weights-{Guid.NewGuid():N}");
        try { DurableFiles.Rename(folder, trash); }
        catch (IOException) { return; }
        SnapshotStore.DeleteQuietly(trash);
    }
}
