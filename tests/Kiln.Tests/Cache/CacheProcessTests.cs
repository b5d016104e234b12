using System.Diagnostics;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>Real `kiln` processes on one cache: killed while saving, or racing on an empty cache.</summary>
public sealed class CacheProcessTests
{
    private static readonly string[] Logits = ["logits", "--ids", "1 403 407 300", "--json", "--threads", "1"];

    [Fact]
    public void KillingASavingProcessNeverLeavesAVisiblePartialEntry()
    {
        using var cache = new CacheDir();
        var expected = cache.Run([.. Logits, "--no-cache"]);
        Assert.True(expected.ExitCode == 0, expected.Stderr);
        // Each trial kills a run as one of its two snapshot saves reports a step before publishing, in turn.
        var targets = SaveKiller.BeforePublishing("snapshot", saves: 2);
        var (trials, killedMidSave) = (30, 0);
        for (var trial = 0; trial < trials; trial++)
        {
            var target = targets[trial % targets.Count];
            Assert.True(SaveKiller.Kill(Path.GetTempPath(), cache.Environment(), Logits, target), $"the run ended before {target}");
            // A staging folder is visible while a save is in progress (and left by a kill).
            if (cache.Leftovers().Count > 0) killedMidSave++;
            cache.AssertEntriesValid();
            // Let the next trial save again: drop what was published (staging leftovers stay, for the next run to clean).
            foreach (var entry in cache.Entries()) Directory.Delete(entry, recursive: true);
        }
        Assert.True(killedMidSave >= 3, $"only {killedMidSave} of {trials} kills landed inside a save");

        var after = KilnCli.RunWith(Path.GetTempPath(), cache.Environment(), Logits);
        Assert.True(after.ExitCode == 0, after.Stderr);
        Assert.Contains("cache miss", after.Stderr);
        Assert.Equal(expected.Stdout, after.Stdout);
        Assert.Empty(cache.Leftovers());
        Assert.Equal(2, cache.Entries().Count);
        cache.AssertEntriesValid();
        Assert.Contains($"cache hit at {DefaultPoints.FinalShort} ", cache.Run(Logits).Stderr);
    }

    [Fact]
    public void FourProcessesOnAnEmptyCacheCompileOnceAndAgree()
    {
        using var cache = new CacheDir();
        var processes = Enumerable.Range(0, 4).Select(_ => KilnCli.Start(Path.GetTempPath(), cache.Environment(), Logits)).ToList();
        var results = processes.Select(p => (Stdout: p.StandardOutput.ReadToEndAsync(), Stderr: p.StandardError.ReadToEndAsync())).ToList();
        foreach (var process in processes)
        {
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)));
            Assert.Equal(0, process.ExitCode);
            process.Dispose();
        }
        var outputs = results.Select(r => (Stdout: r.Stdout.Result, Stderr: r.Stderr.Result)).ToList();
        var misses = outputs.Where(o => o.Stderr.Contains("kiln: cache miss", StringComparison.Ordinal)).ToList();
        var miss = Assert.Single(misses);
        Assert.Contains("compiled and saved 2 snapshot(s)", miss.Stderr);
        Assert.All(outputs.Except(misses), o => Assert.Contains($"kiln: cache hit at {DefaultPoints.FinalShort} ", o.Stderr));
        Assert.All(outputs, o => Assert.DoesNotContain("warning", o.Stderr));
        Assert.Single(outputs.Select(o => o.Stdout).Distinct());
        Assert.Equal(2, cache.Entries().Count);
        cache.AssertEntriesValid();
        Assert.Empty(cache.Leftovers());
        var stats = CacheStats.Read(cache.Root);
        Assert.Equal(3, stats.Hits);
        Assert.Equal(1, stats.Misses.Values.Sum());
    }
}
