using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>Ranks (threads of a <see cref="FakeWorld"/>) restore together, rebuild together and publish only if all saved.</summary>
public sealed class CacheRankTests
{
    [Fact]
    public void TwoRanksWriteTheirOwnFoldersIntoOneEntryAndBothRestoreIt()
    {
        using var cache = new CacheDir();
        var pipeline = CacheCorrectnessTests.FinalPointOnly();
        var world = new FakeWorld(2);
        var cold = world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks));
        Assert.All(cold, r => Assert.Equal("miss", r.Cache!.Status));
        var entry = Assert.Single(cache.Entries());
        var manifest = SnapshotStore.ReadManifest(entry);
        Assert.Equal(2, manifest.WorldSize);
        Assert.Equal(["rank_0/buffers.safetensors", "rank_0/graph.json", "rank_1/buffers.safetensors", "rank_1/graph.json"],
            manifest.Files.Select(f => f.Path));
        cache.AssertEntriesValid();

        var warm = world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks));
        Assert.All(warm, r => Assert.Equal("hit", r.Cache!.Status));
        Assert.Equal(GraphHash.Of(cold[0].Graph), GraphHash.Of(warm[0].Graph));
        Assert.Equal(GraphHash.Of(cold[1].Graph), GraphHash.Of(warm[1].Graph));
    }

    [Fact]
    public void WhenOneRankCannotRestoreBothRebuild()
    {
        using var cache = new CacheDir();
        var pipeline = CacheCorrectnessTests.FinalPointOnly();
        var world = new FakeWorld(2);
        world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks));
        var entry = Assert.Single(cache.Entries());
        var rank1 = Path.Combine(entry, "rank_1", "graph.json");
        var bytes = File.ReadAllBytes(rank1);
        bytes[100] ^= 1;
        File.WriteAllBytes(rank1, bytes);

        var reports = world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks).Cache!);
        Assert.All(reports, r => Assert.Equal("miss", r.Status)); // rank 0's files were fine, yet it did not restore alone
        // Quarantined only after both ranks tried the entry, so each names the damaged file (none found it gone).
        Assert.All(reports, r => Assert.Equal("corrupt entry: rank_1/graph.json: checksum mismatch", r.Reason));
        Assert.Single(Directory.GetDirectories(cache.Quarantine));
        cache.AssertEntriesValid();
        Assert.All(world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks).Cache!),
            r => Assert.Equal("hit", r.Status));
    }

    [Fact]
    public void WhenOneRankFailsToSaveNothingIsPublished()
    {
        using var cache = new CacheDir();
        Directory.CreateDirectory(cache.Pipeline);
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var key = SnapshotKeys.ForPoints(checkpoint, PipelineConfig.Load(), FingerprintMode.Headers, 2, 2)[^1];
        var good = ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph;
        Assert.NotEmpty(good.Buffers);
        // Rank 1's graph has a buffer whose bytes do not fill its shape: the safetensors writer throws.
        var bad = GraphSerializer.Copy(good);
        var buffer = bad.Buffers[0].Value;
        buffer.Type = buffer.Type with { Shape = Shape.Of(buffer.Shape.ToSizes().Select((size, i) => i == 0 ? size + 1 : size)) };

        var world = new FakeWorld(2);
        var stores = new[] { new SnapshotStore(cache.Settings()), new SnapshotStore(cache.Settings()) };
        var saved = world.Run(ranks => stores[ranks.Rank].Save(key, new PointInfo(key.EntryIndex, "select_session_options", "compile"),
            ranks.Rank == 0 ? good : bad, 1, ranks));
        Assert.Equal([false, false], saved);
        Assert.Null(stores[0].SaveFailed);
        Assert.NotNull(stores[1].SaveFailed);
        Assert.Empty(cache.Entries());
        Assert.Empty(cache.Leftovers());
    }
}
