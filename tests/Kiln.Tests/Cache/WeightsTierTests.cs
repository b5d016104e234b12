using System.Diagnostics;
using Kiln.Cache;
using Kiln.Checkpoints;

namespace Kiln.Tests.Cache;

/// <summary>
/// The weights tier with real `kiln` processes on a copy of the default model, whose fused q/k/v and
/// gate/up weights are products: saved on a miss, mapped on a hit, keyed by the checkpoint's content.
/// </summary>
public sealed class WeightsTierTests : IDisposable
{
    private readonly CacheDir _cache = new();
    private readonly string _model;

    public WeightsTierTests()
    {
        _model = _cache.Outside("model");
        Directory.CreateDirectory(_model);
        foreach (var file in Directory.EnumerateFiles(TestPaths.DefaultModel)) File.Copy(file, Path.Combine(_model, Path.GetFileName(file)));
    }

    private string[] Logits => ["logits", "--model", _model, "--ids", "1 403 407 300", "--json", "--threads", "1"];

    private CliResult Run(params string[] extra)
    {
        var result = _cache.Run([.. Logits, .. extra]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result;
    }

    private string FinalEntry => _cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Index == DefaultPoints.FinalIndex);

    private IReadOnlyList<string> WeightsFolders(string entry) => Directory.EnumerateDirectories(entry, WeightsTier.FolderPrefix + "*").ToList();

    [Fact]
    public void AMissSavesTheProductsAndAHitMapsThemWithTheUncachedOutput()
    {
        var uncached = Run("--no-cache").Stdout;
        var cold = Run();
        Assert.Contains("kiln: weights miss (no weights in the entry); computed 10 product(s)", cold.Stderr);
        var warm = Run();
        Assert.Contains($"kiln: cache hit at {DefaultPoints.FinalShort} ", warm.Stderr);
        Assert.Contains("kiln: weights hit", warm.Stderr);
        Assert.Equal(uncached, cold.Stdout);
        Assert.Equal(uncached, warm.Stdout);

        var folder = Assert.Single(WeightsFolders(FinalEntry));
        var file = Path.Combine(folder, "rank_0", WeightsTier.DataFile);
        Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(file));
        // Strictly readable safetensors whose every tensor starts on a page.
        using var mapped = SafetensorsFile.Open(file);
        Assert.All(WeightsFile.Products(mapped), t => Assert.Equal(0, t.DataOffset % WeightsFile.PageBytes));
        Assert.Contains(mapped.Tensors.Keys, name => name.EndsWith("qkv_proj.weight", StringComparison.Ordinal));
        Assert.Contains(mapped.Tensors.Keys, name => name.EndsWith("gate_up_proj.weight", StringComparison.Ordinal));
        Assert.DoesNotContain(mapped.Tensors.Keys, name => name.EndsWith("q_proj.weight", StringComparison.Ordinal) && !name.Contains("qkv", StringComparison.Ordinal));
        Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(Path.Combine(_cache.Root, ContentHashes.MemoFile)));
        // The saved file's checksum is recorded under its identity, so a hit need not read it to check it.
        var record = Assert.Single(WeightsTier.ReadManifest(folder).Files);
        Assert.Equal(record.Xxh3, ContentHashes.Known(_cache.Root, FileIdentity.Of(file)));

        var list = _cache.Run("cache", "list", "--json");
        Assert.Contains("\"weights_bytes\":" + (new FileInfo(file).Length + new FileInfo(Path.Combine(folder, WeightsTier.ManifestFile)).Length), list.Stdout);
        var stats = CacheStats.Read(_cache.Root);
        Assert.Equal(1, stats.WeightsHits);
        Assert.Equal(1, stats.WeightsMisses!["no weights in the entry"]);
        Assert.Contains("xxh3", _cache.Run("cache", "show", Path.GetFileName(FinalEntry)[..12]).Stdout);
    }

    [Fact]
    public void ABf16CheckpointsProductsAreCachedAsBf16AndAHitGivesTheUncachedOutput()
    {
        var model = Directory.CreateDirectory(_cache.Outside("bf16")).FullName;
        Kiln.Tests.EndToEnd.StoredWeightDtypeTests.Convert(TestPaths.Oracle("llama_gqa"), model, Kiln.Graph.DType.BF16);
        string[] logits = ["logits", "--model", model, "--ids", "1 5 7 3", "--json", "--threads", "1"];

        var uncached = _cache.Run([.. logits, "--no-cache"]);
        var cold = _cache.Run(logits);
        var warm = _cache.Run(logits);
        Assert.True(warm.ExitCode == 0, warm.Stderr);
        Assert.Contains("kiln: weights hit", warm.Stderr);
        Assert.Equal(uncached.Stdout, cold.Stdout);
        Assert.Equal(uncached.Stdout, warm.Stdout);

        // The fused q/k/v and gate/up weights are bf16 concatenations, half the bytes of f32 ones.
        using var mapped = SafetensorsFile.Open(Path.Combine(Assert.Single(WeightsFolders(FinalEntry)), "rank_0", WeightsTier.DataFile));
        var matrices = WeightsFile.Products(mapped).Where(t => t.Shape.Length == 2).ToList();
        Assert.Contains(matrices, t => t.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal));
        Assert.All(matrices, t => Assert.Equal(Kiln.Graph.DType.BF16, t.DType));
    }

    [Fact]
    public void AHitAtAnEarlierPointKeepsTheWeightsInTheFinalEntryOnly()
    {
        var expected = Run().Stdout;
        Directory.Delete(FinalEntry, recursive: true);
        var earlier = Run();
        Assert.Contains($"kiln: cache hit at {DefaultPoints.FirstShort} ", earlier.Stderr);
        Assert.Contains("kiln: weights miss (no weights in the entry)", earlier.Stderr);
        Assert.Equal(expected, earlier.Stdout);
        Assert.Single(WeightsFolders(FinalEntry));
        Assert.All(_cache.Entries().Where(e => e != FinalEntry), e => Assert.Empty(WeightsFolders(e)));
        Assert.Contains("kiln: weights hit", Run().Stderr);
    }

    [Fact]
    public void AWeightChangedInPlaceMissesTheWeightsTierAndTheLogitsFollowIt()
    {
        var before = Run().Stdout;
        Assert.Contains("kiln: weights hit", Run().Stderr);

        // Same size, mtime put back with touch -r: only the content (and so the ctime) changed.
        var weights = Path.Combine(_model, "model.safetensors");
        var reference = _cache.Outside("mtime-reference");
        Touch("-r", weights, reference);
        long offset;
        using (var checkpoint = Checkpoint.Open(_model)) offset = checkpoint.Tensor("model.layers.0.self_attn.q_proj.weight").DataOffset;
        using (var stream = new FileStream(weights, FileMode.Open, FileAccess.Write))
        {
            stream.Position = offset;
            stream.Write(BitConverter.GetBytes(3.5f));
        }
        Touch("-r", reference, weights);
        Assert.Equal(File.GetLastWriteTimeUtc(reference), File.GetLastWriteTimeUtc(weights));

        var explain = _cache.Run("cache", "explain", "--model", _model);
        Assert.Contains("hit; weights miss: checkpoint content changed: model.safetensors", explain.Stdout);
        var changed = Run();
        Assert.Contains($"kiln: cache hit at {DefaultPoints.FinalShort} ", changed.Stderr);
        Assert.Contains("kiln: weights miss (checkpoint content changed: model.safetensors)", changed.Stderr);
        Assert.NotEqual(before, changed.Stdout);
        Assert.Equal(Run("--no-cache").Stdout, changed.Stdout);

        var again = Run();
        Assert.Contains("kiln: weights hit", again.Stderr);
        Assert.Equal(changed.Stdout, again.Stdout);
        Assert.Single(WeightsFolders(FinalEntry)); // the stale weights went
        Assert.Contains("hit; weights hit", _cache.Run("cache", "explain", "--model", _model).Stdout);
    }

    // The products are made from the checkpoint's open files, the key from hashing them by path: a new file renamed over
    // one while a model loads must not have the old file's products saved under its content.
    [Fact]
    public void ACheckpointFileReplacedWhileLoadingIsNotCachedUnderTheNewContent()
    {
        var compiled = CachedCompile.Run(_model, _cache.Settings());
        var weights = Path.Combine(_model, "model.safetensors");
        using var opened = Checkpoint.Open(_model);
        var offset = opened.Tensor("model.layers.0.self_attn.q_proj.weight").DataOffset;
        var replacement = _cache.Outside("replacement.safetensors");
        var bytes = File.ReadAllBytes(weights);
        BitConverter.GetBytes(3.5f).CopyTo(bytes, offset);
        File.WriteAllBytes(replacement, bytes);
        File.Move(replacement, weights, overwrite: true);

        var tier = new WeightsTier(_cache.Settings(), compiled.Cache!.Key!, Kiln.Distributed.SingleProcess.Instance);
        using (tier.Load(opened, compiled.Graph)) { }
        Assert.False(tier.Report!.Saved, tier.Report.Summary);
        Assert.Contains("model.safetensors was replaced while the model loaded", string.Join("\n", tier.Report.Warnings));

        // A start on the new file computes its own products: nothing saved from the old file is mapped.
        using var current = Checkpoint.Open(_model);
        var next = new WeightsTier(_cache.Settings(), compiled.Cache!.Key!, Kiln.Distributed.SingleProcess.Instance);
        using var loaded = next.Load(current, compiled.Graph);
        using var expected = Kiln.Weights.WeightSet.Compute(current, compiled.Graph);
        Assert.Equal("miss", next.Report!.Status);
        foreach (var parameter in expected.Parameters)
            Assert.True(parameter.Bytes.SequenceEqual(loaded.Parameters.Single(p => p.Name == parameter.Name).Bytes), parameter.Name);
    }

    [Fact]
    public void AFlippedByteInCachedWeightsIsQuarantinedAndRecomputed()
    {
        var expected = Run().Stdout;
        FlipByte();
        var verify = _cache.Run("cache", "verify");
        Assert.Contains("checksum mismatch", verify.Stdout);
        Assert.Contains(WeightsTier.FolderPrefix, verify.Stdout);
        var damaged = Run();
        Assert.Contains("kiln: weights miss (corrupt weights: rank_0/weights.safetensors: checksum mismatch)", damaged.Stderr);
        Assert.Equal(expected, damaged.Stdout);
        Assert.Contains(Directory.EnumerateDirectories(_cache.Quarantine), d => d.Contains("-weights-", StringComparison.Ordinal));
        var healed = Run();
        Assert.Contains("kiln: weights hit", healed.Stderr);
        Assert.Equal(expected, healed.Stdout);
    }

    // A null inside weights.json's lists (which the JSON reader lets through) escaped `cache verify` as a
    // NullReferenceException; it is a corrupt folder like any other.
    [Fact]
    public void ANullInTheWeightsManifestIsACorruptFolder()
    {
        var expected = Run().Stdout;
        var manifest = Path.Combine(WeightsFolders(FinalEntry).Single(), WeightsTier.ManifestFile);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!;
        json["files"]!.AsArray().Add(null);
        File.WriteAllText(manifest, json.ToJsonString());
        var verify = _cache.Run("cache", "verify");
        Assert.Contains("weights.json: null in files or content", verify.Stdout);
        Assert.DoesNotContain("Exception", verify.Stdout + verify.Stderr);
        var damaged = Run();
        Assert.Contains("kiln: weights miss (corrupt weights: weights.json: null in files or content)", damaged.Stderr);
        Assert.Equal(expected, damaged.Stdout);
    }

    [Fact]
    public void ReadOnlyModeWritesNothing()
    {
        var expected = Run("--no-cache").Stdout;
        // A graph entry without weights: read-only computes them and saves nothing.
        Run();
        foreach (var folder in WeightsFolders(FinalEntry)) Directory.Delete(folder, recursive: true);
        var listing = _cache.Listing();
        var readOnly = Run("--cache-mode", "read-only");
        Assert.Contains("kiln: weights miss (no weights in the entry)", readOnly.Stderr);
        Assert.Equal(expected, readOnly.Stdout);
        Assert.Equal(listing, _cache.Listing());

        // A corrupt weights file is a miss, not quarantined.
        Run();
        FlipByte();
        listing = _cache.Listing();
        readOnly = Run("--cache-mode", "read-only");
        Assert.Contains("corrupt weights", readOnly.Stderr);
        Assert.Equal(expected, readOnly.Stdout);
        Assert.Equal(listing, _cache.Listing());
    }

    [Fact]
    public void TheBudgetEvictsWholeEntriesWeightsIncluded()
    {
        Run();
        var entries = _cache.Run("cache", "list", "--json").Stdout;
        var final = FinalEntry;
        var finalBytes = Directory.EnumerateFiles(final, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var otherBytes = Directory.EnumerateFiles(_cache.Pipeline, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) - finalBytes;
        Assert.True(finalBytes > 5 * otherBytes, entries);

        // Room for the final entry with its weights, not for both: the older one goes.
        foreach (var entry in _cache.Entries()) Directory.Delete(entry, recursive: true);
        Run("--cache-max-size", $"{finalBytes + otherBytes / 2}");
        var kept = Assert.Single(_cache.Entries());
        Assert.Single(WeightsFolders(kept));
        _cache.AssertEntriesValid();

        // No room even for the final entry: it goes whole, never leaving a weights folder or part of one.
        foreach (var entry in _cache.Entries()) Directory.Delete(entry, recursive: true);
        var small = Run("--cache-max-size", $"{finalBytes / 2}");
        Assert.Equal(0, small.ExitCode);
        Assert.Empty(_cache.Entries());
        Assert.Empty(_cache.Leftovers());
    }

    [Fact]
    public void KillingAProcessWhileItSavesWeightsNeverLeavesAVisiblePartialFolder()
    {
        var expected = Run().Stdout;
        // Each trial kills a run as its weights save reports a step before publishing, in turn.
        var targets = SaveKiller.BeforePublishing("weights", saves: 1);
        var (trials, killedMidSave) = (12, 0);
        for (var trial = 0; trial < trials; trial++)
        {
            foreach (var folder in WeightsFolders(FinalEntry)) Directory.Delete(folder, recursive: true);
            var target = targets[trial % targets.Count];
            Assert.True(SaveKiller.Kill(Path.GetTempPath(), _cache.Environment(), Logits, target), $"the run ended before {target}");
            if (_cache.Leftovers().Count > 0) killedMidSave++;
            // A weights folder is either absent or whole: its manifest and a file of exactly the recorded size and hash.
            foreach (var folder in WeightsFolders(FinalEntry))
            {
                var manifest = WeightsTier.ReadManifest(folder);
                var record = Assert.Single(manifest.Files);
                using var stream = File.OpenRead(Path.Combine(folder, record.Path));
                Assert.Equal(record.Bytes, stream.Length);
                Assert.Equal(record.Xxh3, ContentHashes.Hash(stream));
            }
        }
        Assert.True(killedMidSave >= trials / 2, $"only {killedMidSave} of {trials} kills landed inside a save");
        var after = Run();
        Assert.Equal(expected, after.Stdout);
        Assert.Empty(_cache.Leftovers());
        Assert.Contains("kiln: weights hit", Run().Stderr);
    }

    private void FlipByte()
    {
        var file = Path.Combine(Assert.Single(WeightsFolders(FinalEntry)), "rank_0", WeightsTier.DataFile);
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = stream.Length / 2;
        var value = (byte)stream.ReadByte();
        stream.Position = stream.Length / 2;
        stream.WriteByte((byte)(value ^ 0x10));
    }

    private static void Touch(string flag, string from, string to)
    {
        using var touch = Process.Start("touch", [flag, from, to])!;
        touch.WaitForExit();
        Assert.Equal(0, touch.ExitCode);
    }

    public void Dispose() => _cache.Dispose();
}
