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
        // 25 ms between save steps widens the save window (2 points x 5 steps) to about 250 ms of the run.
        var environment = cache.Environment((SnapshotStore.SaveStepDelayVariable, "25"));
        // Kill times are spread over the middle of a full run timed here, so they keep landing in the save
        // window however loaded the machine is.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, KilnCli.RunWith(Path.GetTempPath(), environment, Logits).ExitCode);
        var runMs = (int)clock.ElapsedMilliseconds;
        foreach (var entry in cache.Entries()) Directory.Delete(entry, recursive: true);
        var random = new Random(4);
        var (trials, killedMidSave, publishedBeforeKill) = (30, 0, 0);
        for (var trial = 0; trial < trials; trial++)
        {
            using var process = KilnCli.Start(Path.GetTempPath(), environment, Logits);
            Thread.Sleep(random.Next(runMs / 4, runMs * 17 / 20));
            process.Kill();
            process.WaitForExit();
            // A staging folder is visible while a save is in progress (and left by a kill).
            if (cache.Leftovers().Count > 0) killedMidSave++;
            publishedBeforeKill += cache.Entries().Count;
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
        Assert.Contains("cache hit at point 17", cache.Run(Logits).Stderr);
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
        Assert.All(outputs.Except(misses), o => Assert.Contains("kiln: cache hit at point 17", o.Stderr));
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
