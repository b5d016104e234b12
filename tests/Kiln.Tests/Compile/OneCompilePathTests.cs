using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Transforms;
using Kiln.Tests.Cache;

namespace Kiln.Tests.Compile;

/// <summary>
/// Every way of compiling is the one path (<see cref="ModelCompiler"/>) with the cache off or on: uncached,
/// cold, warm and verified (--cache-verify) compiles give the same graph, per rank, in a world of one and
/// in a world of two (fake) ranks. A verify that disagreed would also warn and remove the entry.
/// </summary>
public sealed class OneCompilePathTests
{
    [Theory]
    [InlineData("default", 1)]
    [InlineData("default", 2)]
    [InlineData("bf16", 2)]
    [InlineData("llama_gqa", 2)]
    [InlineData("mistral", 2)]
    [InlineData("qwen2", 1)]
    [InlineData("qwen2", 2)]
    public void UncachedColdWarmAndVerifiedCompilesGiveTheSameGraphPerRank(string family, int worldSize)
    {
        using var temp = new TempDir();
        using var cache = new CacheDir();
        var model = FamilyModels.Directory(family, temp);
        var world = new FakeWorld(worldSize);
        string[] Hashes(Func<Kiln.Distributed.ICommunicator, CompileResult> compile) =>
            world.Run(ranks => GraphHash.Of(compile(ranks).Graph));
        CompileResult Cached(Kiln.Distributed.ICommunicator ranks, CacheSettings settings, string status)
        {
            using var checkpoint = Checkpoint.Open(model);
            var result = new PipelineCache(settings, ranks).Compile(checkpoint, PipelineConfig.Load());
            Assert.Equal(status, result.Cache!.Status);
            Assert.DoesNotContain(result.Cache.Warnings, w => w.Contains("VERIFY FAILED", StringComparison.Ordinal));
            return result;
        }

        var uncached = Hashes(ranks =>
        {
            using var checkpoint = Checkpoint.Open(model);
            return ModelCompiler.Compile(checkpoint, PipelineConfig.Load(), world: ranks);
        });
        var cold = Hashes(ranks => Cached(ranks, cache.Settings(), "miss"));
        var warm = Hashes(ranks => Cached(ranks, cache.Settings(), "hit"));
        var verified = Hashes(ranks => Cached(ranks, cache.Settings() with { VerifyOnHit = true }, "hit"));

        Assert.Equal(worldSize, uncached.Length);
        Assert.Equal(uncached, cold);
        Assert.Equal(uncached, warm);
        Assert.Equal(uncached, verified);
        // Both snapshot points saved once for this world, and kept: no verify removed them.
        Assert.Equal(2, cache.Entries().Count);
        Assert.All(cache.Entries(), e => Assert.Equal(worldSize, SnapshotStore.ReadManifest(e).WorldSize));
    }
}
