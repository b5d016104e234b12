using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>The byte budget evicts the least recently used entries (by last use, not by creation).</summary>
public sealed class CacheEvictionTests
{
    [Fact]
    public void PublishingAnotherModelEvictsTheLeastRecentlyUsedEntries()
    {
        var (a, b, c) = (TestPaths.DefaultModel, TestPaths.Oracle("llama_gqa"), TestPaths.Oracle("qwen2"));
        using var cache = new CacheDir();
        var unlimited = cache.Settings();
        var entriesOfA = Publish(cache, a, unlimited);
        var entriesOfB = Publish(cache, b, unlimited);
        // A's final entry is used again: it is now more recent than both of B's.
        Assert.Equal("hit", CachedCompile.Run(a, unlimited).Cache!.Status);
        var finalOfA = entriesOfA.Single(e => SnapshotStore.ReadManifest(Path.Combine(cache.Pipeline, e)).Point.Stage == "compile");

        // Room for A's final entry and C's two, plus slack smaller than any of B's entries.
        var sizeOfC = SizeOfEntries(c);
        var sizes = new SnapshotStore(unlimited).List().ToDictionary(e => e.Key, e => e.Bytes);
        var slack = entriesOfB.Min(e => sizes[e]) / 2;
        Assert.True(slack > 4096);
        var budget = sizes[finalOfA] + sizeOfC + slack;

        Publish(cache, c, unlimited with { MaxBytes = budget });
        var left = cache.Entries().Select(Path.GetFileName).ToHashSet();
        Assert.Contains(finalOfA, left);
        Assert.DoesNotContain(entriesOfA.Single(e => e != finalOfA), left);
        Assert.DoesNotContain(entriesOfB[0], left);
        Assert.DoesNotContain(entriesOfB[1], left);
        Assert.Equal(3, left.Count);
        Assert.Equal("hit", CachedCompile.Run(a, unlimited).Cache!.Status);
    }

    [Fact]
    public void TheCliBudgetEvictsTheOtherModel()
    {
        using var cache = new CacheDir();
        Assert.Equal(0, cache.Run("compile", "--model", TestPaths.Oracle("llama_gqa")).ExitCode);
        var first = cache.Entries();
        Assert.Equal(2, first.Count);
        var run = cache.Run("compile", "--cache-max-size", "1K");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("cache miss", run.Stderr);
        // Over budget even alone: every older entry goes first, then the oldest of the new ones.
        Assert.Empty(first.Intersect(cache.Entries()));
    }

    private static string[] Publish(CacheDir cache, string model, CacheSettings settings)
    {
        var before = cache.Entries();
        Assert.Equal("miss", CachedCompile.Run(model, settings).Cache!.Status);
        var added = cache.Entries().Except(before).Select(e => Path.GetFileName(e)!).ToArray();
        Assert.Equal(2, added.Length);
        return added;
    }

    private static long SizeOfEntries(string model)
    {
        using var scratch = new CacheDir();
        CachedCompile.Run(model, scratch.Settings());
        return new SnapshotStore(scratch.Settings()).List().Sum(e => e.Bytes);
    }
}
