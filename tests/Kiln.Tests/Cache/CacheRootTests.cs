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
    [InlineData("pipeline")]
    [InlineData("quarantine")]
    [InlineData("locks")]
    public void AnOtherWritableFolderUnderAPrivateRootIsNotRead(string folder)
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(cache.Root));
        var path = Path.Combine(cache.Root, folder);
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_111_111);

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("off", report.Status);
        Assert.Contains(report.Warnings, w => w.Contains($"not using the cache: {path} is writable by group or others (mode 777)", StringComparison.Ordinal));
        Assert.Equal(uncached.Value, logits);
        Assert.Equal("hit", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings() with { TrustSharedRoot = true }).Cache!.Status);
    }

    [Fact]
    public void APipelineFolderThatIsALinkIsNeverFollowed()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        // The entries are intact but reached through a link: not even a shared root may be read through it.
        Directory.Move(cache.Pipeline, cache.Outside("pipeline"));
        Directory.CreateSymbolicLink(cache.Pipeline, cache.Outside("pipeline"));
        foreach (var settings in new[] { cache.Settings(), cache.Settings() with { TrustSharedRoot = true } })
        {
            var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, settings);
            Assert.Equal("off", report.Status);
            Assert.Contains(report.Warnings, w => w.Contains($"{cache.Pipeline} is a link", StringComparison.Ordinal));
            Assert.Equal(uncached.Value, logits);
        }
        Assert.Equal(2, Directory.GetDirectories(cache.Outside("pipeline")).Length); // nothing written through the link
    }

    [Fact]
    public void AnEntryFolderThatIsALinkIsAMissAndQuarantined()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var final = cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Stage == "compile");
        Directory.Move(final, cache.Outside("entry"));
        Directory.CreateSymbolicLink(final, cache.Outside("entry"));

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("hit", report.Status);
        Assert.StartsWith("point 9 ", report.Point);
        Assert.Contains("corrupt entry: the entry is a link, not a directory", report.Reason);
        Assert.Equal(uncached.Value, logits);
        // The link itself was moved to the quarantine; its target is untouched.
        Assert.NotNull(new FileInfo(Directory.EnumerateFileSystemEntries(cache.Quarantine).Single()).LinkTarget);
        Assert.True(File.Exists(Path.Combine(cache.Outside("entry"), SnapshotStore.ManifestFile)));
    }

    [Fact]
    public void AnOtherWritableEntryIsAMissNotAHit()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var final = cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Stage == "compile");
        File.SetUnixFileMode(final, File.GetUnixFileMode(final) | UnixFileMode.OtherWrite);

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("hit", report.Status);
        Assert.StartsWith("point 9 ", report.Point);
        Assert.Contains($"untrusted entry: {final} is writable by group or others", report.Reason);
        Assert.Equal(uncached.Value, logits);
        Assert.Equal("point 17 (after select_session_options, stage compile)",
            CachedCompile.Run(TestPaths.DefaultModel, cache.Settings() with { TrustSharedRoot = true }).Cache!.Point);
    }

    [Fact]
    public void AStatsFileThatIsAFifoNeitherBlocksNorFailsARun()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var stats = Path.Combine(cache.Root, "stats.json");
        File.Delete(stats);
        HostileEntry.MakeFifo(stats);

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("hit", report.Status);
        Assert.Equal(uncached.Value, logits);
        // The counts restart in a regular file in its place.
        Assert.Equal(1, CacheStats.Read(cache.Root).Hits);
        Assert.True(FileStatus.OfPath(stats)!.Value.IsRegularFile);
    }

    [Fact]
    public void EverythingKilnCreatesIsPrivateEvenUnderUmask000()
    {
        using var cache = new CacheDir();
        // A real process whose umask grants everything: only the modes Kiln sets at creation protect the cache.
        var start = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("umask 000; exec dotnet \"$0\" generate --model \"$1\" --prompt-ids 1 --max-new-tokens 2 >/dev/null");
        start.ArgumentList.Add(KilnCli.Dll);
        start.ArgumentList.Add(TestPaths.DefaultModel);
        start.Environment["KILN_CACHE_DIR"] = cache.Root;
        using (var process = System.Diagnostics.Process.Start(start)!)
        {
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, stderr);
        }
        var created = Directory.EnumerateFileSystemEntries(cache.Root, "*", SearchOption.AllDirectories).Prepend(cache.Root).ToList();
        Assert.Contains(created, p => p.EndsWith("buffers.safetensors", StringComparison.Ordinal));
        Assert.Contains(created, p => p.EndsWith(".lock", StringComparison.Ordinal));
        Assert.Contains(created, p => p.EndsWith("stats.json", StringComparison.Ordinal));
        foreach (var path in created)
        {
            var expected = Directory.Exists(path) ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute : UnixFileMode.UserRead | UnixFileMode.UserWrite;
            Assert.True(File.GetUnixFileMode(path) == expected, $"{path} is {Convert.ToString((int)File.GetUnixFileMode(path), 8)}");
        }
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
