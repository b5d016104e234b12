using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// A root the cache must not trust or cannot write, and writes that fail: a warning, a run without the
/// cache, the uncached answer, and no partial entry. Tests run as root, so trust is checked with
/// ownership and mode bits (stat), and "cannot write" with paths no one can write.
/// </summary>
public sealed class CacheRootTests(UncachedLogits uncached) : IClassFixture<UncachedLogits>
{
    [Fact]
    public void AGroupWritableRootIsNotReadUnlessTrusted()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        File.SetUnixFileMode(cache.Root, File.GetUnixFileMode(cache.Root) | UnixFileMode.GroupWrite);

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("off", report.Status);
        Assert.Contains(report.Warnings, w => w.Contains(cache.Root, StringComparison.Ordinal) && w.Contains("writable by group or others", StringComparison.Ordinal));
        Assert.Equal(uncached.Value, logits);

        var trusted = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings() with { TrustSharedRoot = true }).Cache!;
        Assert.Equal("hit", trusted.Status);

        // And through the CLI: the warning names the path, --cache-trust-shared-root reads it.
        var cli = cache.Run("logits", "--ids", "1 2", "--json");
        Assert.Equal(0, cli.ExitCode);
        Assert.Contains($"kiln: warning: not using the cache: {cache.Root} is writable by group or others", cli.Stderr);
        Assert.Contains("kiln: cache hit", cache.Run("logits", "--ids", "1 2", "--cache-trust-shared-root").Stderr);
    }

    [Fact]
    public void ARootOwnedByAnotherUserIsNotRead()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        File.SetUnixFileMode(cache.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        ChangeOwner(cache.Root, 4242);
        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("off", report.Status);
        Assert.Contains(report.Warnings, w => w.Contains($"{cache.Root} belongs to user id 4242", StringComparison.Ordinal));
        Assert.Equal(uncached.Value, logits);
    }

    [Theory]
    [InlineData("under /proc")]
    [InlineData("a file")]
    [InlineData("pipeline is a file")]
    public void ARootThatCannotBeWrittenIsAWarningAndTheRunGoesOnUncached(string kind)
    {
        using var cache = new CacheDir();
        var settings = cache.Settings();
        switch (kind)
        {
            case "under /proc":
                settings = settings with { Root = $"/proc/kiln-cache-{Guid.NewGuid():N}" };
                break;
            case "a file":
                File.WriteAllText(cache.Root, "not a folder");
                break;
            case "pipeline is a file":
                Directory.CreateDirectory(cache.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                File.WriteAllText(cache.Pipeline, "not a folder");
                break;
        }
        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, settings);
        Assert.Equal("off", report.Status);
        Assert.Contains(report.Warnings, w => w.Contains(settings.Root, StringComparison.Ordinal) && w.Contains("not writable", StringComparison.Ordinal));
        Assert.Equal(uncached.Value, logits);
        Assert.Empty(cache.Entries());
    }

    [Fact]
    public void AFailingPublishIsAWarningAndLeavesNoPartialEntry()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var final = cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Stage == "compile");
        // The final entry's name is taken by a file that cannot be quarantined (the quarantine is a file too):
        // the rename that publishes it fails.
        Directory.Delete(final, recursive: true);
        File.WriteAllText(final, "in the way");
        File.WriteAllText(cache.Quarantine, "in the way");

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("hit", report.Status);
        Assert.StartsWith("point 9 ", report.Point);
        Assert.Equal(0, report.Published);
        Assert.Contains(report.Warnings, w => w.StartsWith("could not save snapshot", StringComparison.Ordinal));
        Assert.Equal(uncached.Value, logits);
        Assert.Empty(cache.Leftovers());
        cache.AssertEntriesValid();
    }

    [Fact]
    public void ALockFolderThatCannotBeCreatedIsAWarningNotACrash()
    {
        using var cache = new CacheDir();
        var pipeline = CacheCorrectnessTests.FinalPointOnly();
        // The shared lock folder is a file: the compile lock cannot be taken. The run must still answer.
        Directory.CreateDirectory(cache.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(cache.Root, "locks"), "in the way");
        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings(), pipeline);
        Assert.Equal(uncached.Value, logits);
        Assert.NotEqual("hit", report.Status);
        Assert.NotEmpty(report.Warnings);
        Assert.Empty(cache.Leftovers());
        cache.AssertEntriesValid();
    }

    private static void ChangeOwner(string path, int uid)
    {
        using var process = System.Diagnostics.Process.Start("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
