using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Weights;

namespace Kiln.Tests.Cache;

/// <summary>The weights tier with two ranks (threads of a <see cref="FakeWorld"/>): one file per rank, restored by all ranks or by none.</summary>
public sealed class WeightsTierRankTests
{
    [Fact]
    public void TwoRanksSaveTheirOwnFilesAndRestoreOnlyTogether()
    {
        using var cache = new CacheDir();
        var pipeline = CacheCorrectnessTests.FinalPointOnly();
        var world = new FakeWorld(2);
        var compiled = world.Run(ranks => CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), pipeline, ranks));

        // Each rank's products, as bytes, with the report of the run that produced them.
        (WeightsReport Report, Dictionary<string, byte[]> Bytes)[] Load() => world.Run(ranks =>
        {
            using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
            var tier = new WeightsTier(cache.Settings(), compiled[ranks.Rank].Cache!.Key!, ranks);
            using var weights = tier.Load(checkpoint, compiled[ranks.Rank].Graph);
            return (tier.Report!, weights.Parameters.ToDictionary(p => p.Name, p => p.Bytes.ToArray()));
        });

        var cold = Load();
        Assert.All(cold, r => Assert.Equal("miss", r.Report.Status));
        Assert.All(cold, r => Assert.True(r.Report.Saved));
        var folder = Assert.Single(Directory.GetDirectories(Assert.Single(cache.Entries()), WeightsTier.FolderPrefix + "*"));
        var manifest = WeightsTier.ReadManifest(folder);
        Assert.Equal(2, manifest.WorldSize);
        Assert.Equal(["rank_0/weights.safetensors", "rank_1/weights.safetensors"], manifest.Files.Select(f => f.Path));
        Assert.Null(WeightsTier.Check(folder));

        var warm = Load();
        Assert.All(warm, r => Assert.Equal("hit", r.Report.Status));
        for (var rank = 0; rank < 2; rank++) Assert.Equal(cold[rank].Bytes, warm[rank].Bytes);

        // Rank 1's file damaged: rank 0's is fine, yet it does not restore alone.
        var rank1 = Path.Combine(folder, "rank_1", WeightsTier.DataFile);
        var bytes = File.ReadAllBytes(rank1);
        bytes[^100] ^= 1;
        File.WriteAllBytes(rank1, bytes);
        var damaged = Load();
        Assert.All(damaged, r => Assert.Equal("miss", r.Report.Status));
        Assert.Contains("checksum mismatch", damaged[1].Report.Reason);
        Assert.Equal("another rank could not restore", damaged[0].Report.Reason);
        for (var rank = 0; rank < 2; rank++) Assert.Equal(cold[rank].Bytes, damaged[rank].Bytes);
        Assert.Contains(Directory.GetDirectories(cache.Quarantine), d => d.Contains("-weights-", StringComparison.Ordinal));

        Assert.All(Load(), r => Assert.Equal("hit", r.Report.Status));
    }
}
