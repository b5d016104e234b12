using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>
/// A hit gives exactly what a cold compile gives; every key component that changes makes a miss;
/// runtime-only settings do not; a change after a point resumes from that point.
/// </summary>
public sealed class CacheCorrectnessTests
{
    private static readonly string FinalPoint = DefaultPoints.Final;

    [Fact]
    public void SecondRunHitsAtTheFinalPointWithIdenticalLogitsAndText()
    {
        using var cache = new CacheDir();
        var cold = cache.Run("logits", "--ids", "1 403 407 300", "--json", "--threads", "1");
        var warm = cache.Run("logits", "--ids", "1 403 407 300", "--json", "--threads", "1");
        Assert.True(cold.ExitCode == 0, cold.Stderr);
        Assert.Contains("kiln: cache miss (no entry); compiled and saved 2 snapshot(s)", cold.Stderr);
        Assert.Contains($"kiln: cache hit at {FinalPoint}", warm.Stderr);
        Assert.Equal(cold.Stdout, warm.Stdout);

        // Runtime-only settings are not in the key.
        var generateCold = cache.Run("generate", "-p", "Once upon a time", "-n", "12", "--json", "--threads", "1");
        var generateWarm = cache.Run("generate", "-p", "Once upon a time", "-n", "20", "--json", "--threads", "2");
        Assert.Contains($"kiln: cache hit at {FinalPoint}", generateCold.Stderr);
        Assert.Contains($"kiln: cache hit at {FinalPoint}", generateWarm.Stderr);
        var uncached = cache.Run("generate", "-p", "Once upon a time", "-n", "12", "--json", "--threads", "1", "--no-cache");
        Assert.Contains("kiln: cache off (disabled)", uncached.Stderr);
        Assert.Equal(NewIds(uncached.Stdout), NewIds(generateCold.Stdout));
        Assert.Equal(NewIds(uncached.Stdout), NewIds(generateWarm.Stdout)[..12]);
        Assert.Equal(JsonNode.Parse(uncached.Stdout)!["text"]!.ToString(), JsonNode.Parse(generateCold.Stdout)!["text"]!.ToString());
    }

    [Fact]
    public void ATransformSettingBeforeBothPointsMissesAndItsOwnEntryThenHits()
    {
        using var cache = new CacheDir();
        Assert.Equal("miss", Status(cache.Run("compile", "--json")));
        var changed = cache.Run("compile", "--json", "--set", "fuse_swiglu.enabled=false");
        Assert.Equal("miss", Status(changed));
        Assert.Equal("no entry", Cache(changed)["reason"]!.ToString());
        Assert.Equal(4, cache.Entries().Count);
        Assert.Equal("hit", Status(cache.Run("compile", "--json", "--set", "fuse_swiglu.enabled=false")));
        Assert.Equal("hit", Status(cache.Run("compile", "--json")));
    }

    [Fact]
    public void ChangingTheConfigOrATensorShapeChangesEveryKey()
    {
        using var temp = new TempDir();
        var original = Copy(TestPaths.Oracle("llama_gqa"), temp.File("original"));
        var config = Copy(original, temp.File("config"));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(config, "config.json")))!;
        json["rms_norm_eps"] = 1e-5 + 1e-9;
        File.WriteAllText(Path.Combine(config, "config.json"), json.ToJsonString());
        var shape = Copy(original, temp.File("shape"));
        RewriteWithTransposedTensor(shape, "model.norm.weight");

        var keys = Keys(original);
        AssertAllDiffer(keys, Keys(config), "model.config");
        AssertAllDiffer(keys, Keys(shape), "checkpoint.fingerprint");

        // And through the cache: the changed config misses against the original's entries.
        using var cache = new CacheDir();
        Assert.Equal("miss", CachedCompile.Run(original, cache.Settings()).Cache!.Status);
        Assert.Equal("hit", CachedCompile.Run(original, cache.Settings()).Cache!.Status);
        Assert.Equal("miss", CachedCompile.Run(config, cache.Settings()).Cache!.Status);
    }

    [Fact]
    public void TheWorldSizeEntersTheKeyOnceThePrefixReachesSharding()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var pipeline = PipelineConfig.Load();
        var one = SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers, worldSize: 1);
        var two = SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers, worldSize: 2, tensorParallel: 2);
        // The first point comes before any sharding-stage transform: its graph is the same for every layout.
        Assert.Equal(one[0].Key, two[0].Key);
        Assert.NotEqual(one[^1].Key, two[^1].Key);
        Assert.Contains(two[^1].Components, c => c.Name == "layout" && c.Value.Contains("world_size=2", StringComparison.Ordinal));

        // A 2-rank run never hits the 1-rank final entry; it may share the layout-free point.
        using var cache = new CacheDir();
        Assert.Equal("miss", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings()).Cache!.Status);
        var reports = new FakeWorld(2).Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), ranks: ranks).Cache!);
        foreach (var report in reports)
        {
            Assert.NotEqual(FinalPoint, report.Point);
            Assert.Equal("hit", report.Status);
            Assert.StartsWith(DefaultPoints.FirstShort + " ", report.Point);
        }
        Assert.Empty(Directory.Exists(cache.Quarantine) ? Directory.GetDirectories(cache.Quarantine) : []);
        var twoRankFinal = Path.Combine(cache.Pipeline, two[^1].Key);
        Assert.True(File.Exists(Path.Combine(twoRankFinal, "rank_1", "graph.json")));
    }

    [Fact]
    public void AddingOrRemovingASnapshotPointChangesNoOtherPointsKey()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var both = SnapshotKeys.ForPoints(checkpoint, PipelineConfig.Load(), FingerprintMode.Headers);
        var finalOnly = SnapshotKeys.ForPoints(checkpoint, FinalPointOnly(), FingerprintMode.Headers);
        Assert.Equal(both[^1].Key, Assert.Single(finalOnly).Key);
    }

    [Fact]
    public void AnEditedSchemaVersionIsAMissNamingTheSchemaAndTheEntryIsQuarantined()
    {
        using var cache = new CacheDir();
        var pipeline = FinalPointOnly();
        Assert.Equal("miss", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline).Cache!.Status);
        var entry = Assert.Single(cache.Entries());
        var manifestPath = Path.Combine(entry, SnapshotStore.ManifestFile);
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        manifest["schema_version"] = SnapshotKeys.SnapshotSchemaVersion + 1;
        File.WriteAllText(manifestPath, manifest.ToJsonString());

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings(), pipeline);
        Assert.Equal("miss", report.Status);
        Assert.Contains("schema version", report.Reason);
        Assert.Single(Directory.GetDirectories(cache.Quarantine));
        Assert.Equal(1, CacheStats.Read(cache.Root).Quarantined);
        Assert.Equal(CachedCompile.Uncached(TestPaths.DefaultModel, pipeline), logits);
        Assert.Equal("hit", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline).Cache!.Status);
    }

    [Fact]
    public void ChangingATransformAfterAPointResumesFromThatPoint()
    {
        using var temp = new TempDir();
        var file = temp.File("pipeline.yaml");
        File.WriteAllText(file, """
            transforms:
              - name: eliminate_dead_code
              - name: eliminate_common_subexpressions
              - name: remove_no_ops
              - name: fuse_rms_norm
              - name: pipeline_cache
              - name: fuse_rotary_embedding
              - name: fuse_attention
              - name: fuse_swiglu
              - name: load_weights
              - name: pipeline_cache
            """);
        using var cache = new CacheDir();
        Assert.Equal("miss", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), PipelineConfig.Load(file)).Cache!.Status);

        var changed = PipelineConfig.Load(file, ["fuse_swiglu.enabled=false"]);
        var resumed = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), changed);
        Assert.Equal("hit", resumed.Cache!.Status);
        Assert.Equal(DefaultPoints.Describe(changed, DefaultPoints.Indices(changed)[0]), resumed.Cache.Point);
        Assert.Equal(1, resumed.Cache.Published); // the changed final point is saved
        Assert.Contains(resumed.Graph.Nodes, n => n.Op == "silu");
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var cold = ModelCompiler.Compile(checkpoint, changed);
        Assert.Equal(GraphHash.Of(Normalized(cold.Graph)), GraphHash.Of(Normalized(resumed.Graph)));
        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings(), changed);
        Assert.Equal("hit", report.Status);
        Assert.Equal(CachedCompile.Uncached(TestPaths.DefaultModel, changed), logits);
    }

    /// <summary>The default pipeline without its first snapshot point.</summary>
    public static PipelineConfig FinalPointOnly()
    {
        var all = PipelineConfig.Load();
        var first = all.Entries.ToList().FindIndex(e => e is SnapshotPoint);
        return new PipelineConfig(all.Entries.Where((_, i) => i != first).ToList());
    }

    // The restored history says shapes are unverified (they are re-verified on restore); the graph is what matters.
    private static ModelGraph Normalized(ModelGraph graph)
    {
        graph.History.Clear();
        return graph;
    }

    private static IReadOnlyList<SnapshotKey> Keys(string model)
    {
        using var checkpoint = Checkpoint.Open(model);
        return SnapshotKeys.ForPoints(checkpoint, PipelineConfig.Load(), FingerprintMode.Headers);
    }

    private static void AssertAllDiffer(IReadOnlyList<SnapshotKey> a, IReadOnlyList<SnapshotKey> b, string component)
    {
        Assert.Equal(a.Count, b.Count);
        for (var i = 0; i < a.Count; i++)
        {
            Assert.NotEqual(a[i].Key, b[i].Key);
            var differing = a[i].Components.Zip(b[i].Components).Where(p => p.First != p.Second).Select(p => p.First.Name).ToList();
            Assert.Equal([component], differing);
        }
    }

    // Same bytes, shape [n] written as [1, n]: only the header changes.
    private static void RewriteWithTransposedTensor(string model, string name)
    {
        var path = Path.Combine(model, Checkpoint.SingleWeightsFileName);
        var copy = path + ".orig";
        File.Move(path, copy);
        using (var source = SafetensorsFile.Open(copy))
        {
            var entries = source.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal)
                .Select(t => new SafetensorsEntry(t.Name, t.DType, t.Name == name ? [1, .. t.Shape] : t.Shape)).ToList();
            using var writer = SafetensorsWriter.Create(path, entries);
            foreach (var entry in writer.Order) writer.WriteTensor(entry.Name, source.GetBytes(source.Tensors[entry.Name]));
            writer.Complete();
        }
        File.Delete(copy);
    }

    public static string Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        return to;
    }

    private static JsonNode Cache(CliResult result) => JsonNode.Parse(result.Stdout)!["cache"]!;

    private static string Status(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return Cache(result)["status"]!.ToString();
    }

    private static int[] NewIds(string json) => JsonSerializer.Deserialize<int[]>(JsonNode.Parse(json)!["new_ids"]!.ToJsonString())!;
}
