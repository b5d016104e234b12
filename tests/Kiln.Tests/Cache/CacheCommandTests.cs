using System.Text.Json;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// `kiln cache list | show | explain | verify | prune | clear | stats` as real processes on a cache
/// directory of each test's own, filled by a real `kiln compile` of the embedded model.
/// </summary>
public sealed class CacheCommandTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _root;

    public CacheCommandTests() => _root = Path.Combine(_temp.Path, "cache");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void ListAndShow_AfterACompile_MatchTheManifests()
    {
        Compile();
        using var list = Json("list");
        var entries = list.RootElement.GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(2, list.RootElement.GetProperty("count").GetInt32());
        Assert.Equal(2, entries.Count);
        foreach (var entry in entries)
        {
            var key = entry.GetProperty("key").GetString()!;
            var manifest = Manifest(key);
            Assert.Equal(manifest.Point.Index, entry.GetProperty("point").GetProperty("index").GetInt32());
            Assert.Equal(manifest.Point.After, entry.GetProperty("point").GetProperty("after").GetString());
            Assert.Equal(manifest.Point.Stage, entry.GetProperty("point").GetProperty("stage").GetString());
            Assert.Equal("LlamaForCausalLM", entry.GetProperty("architecture").GetString());
            Assert.Equal(manifest.Created, entry.GetProperty("created").GetDateTimeOffset());
            Assert.Equal(manifest.CompileMs, entry.GetProperty("compile_ms").GetDouble());
            Assert.True(entry.GetProperty("bytes").GetInt64() > manifest.Files.Sum(f => f.Bytes));

            using var show = Json("show", key[..10]);
            var shown = show.RootElement.GetProperty("manifest");
            Assert.Equal(key, shown.GetProperty("key").GetString());
            Assert.Equal(manifest.SchemaVersion, shown.GetProperty("schema_version").GetInt32());
            Assert.Equal(manifest.IrSchemaVersion, shown.GetProperty("ir_schema_version").GetInt32());
            Assert.Equal(manifest.ToolVersion, shown.GetProperty("tool_version").GetString());
            Assert.Equal(1, shown.GetProperty("world_size").GetInt32());
            Assert.Equal(manifest.Components.Select(c => $"{c.Name}={c.Value}"),
                shown.GetProperty("components").EnumerateArray().Select(c => $"{c.GetProperty("name").GetString()}={c.GetProperty("value").GetString()}"));
            Assert.Equal(manifest.Files.Select(f => $"{f.Path} {f.Bytes} {f.Sha256}"),
                shown.GetProperty("files").EnumerateArray().Select(f => $"{f.GetProperty("path").GetString()} {f.GetProperty("bytes").GetInt64()} {f.GetProperty("sha256").GetString()}"));
        }
        Assert.Contains(entries[0].GetProperty("key").GetString()![..12], Kiln("cache", "list").Stdout);
        Assert.Equal(0, Kiln("cache", "show", entries[0].GetProperty("key").GetString()!).ExitCode);
    }

    [Fact]
    public void Show_UnknownOrAmbiguousKey_ExitsTwoNamingIt()
    {
        Compile();
        var unknown = Kiln("cache", "show", "0123abcd");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("'0123abcd'", unknown.Stderr);

        var existing = new SnapshotStore(new CacheSettings(_root)).List()[0].Key;
        CopyDirectory(EntryDirectory(existing), Path.Combine(_root, "pipeline", "abc1" + existing[4..]));
        CopyDirectory(EntryDirectory(existing), Path.Combine(_root, "pipeline", "abc2" + existing[4..]));
        var ambiguous = Kiln("cache", "show", "abc");
        Assert.Equal(2, ambiguous.ExitCode);
        Assert.Contains("'abc' is ambiguous", ambiguous.Stderr);
    }

    [Fact]
    public void Explain_NamesTheDifferingComponent()
    {
        Compile();
        var same = Kiln("cache", "explain");
        Assert.Equal(0, same.ExitCode);
        Assert.Equal(2, same.Stdout.Split('\n').Count(l => l.EndsWith(": hit", StringComparison.Ordinal)));

        var changed = Kiln("cache", "explain", "--set", "fuse_swiglu.enabled=false");
        Assert.Equal(0, changed.ExitCode);
        Assert.Equal(2, changed.Stdout.Split('\n').Count(l => l.Contains("fuse_swiglu differs (entry fuse_swiglu(enabled=true) vs request fuse_swiglu(enabled=false))", StringComparison.Ordinal)));

        using var json = Json("explain", "--set", "fuse_swiglu.enabled=false");
        Assert.All(json.RootElement.GetProperty("points").EnumerateArray(), p =>
        {
            Assert.False(p.GetProperty("hit").GetBoolean());
            Assert.EndsWith(".fuse_swiglu", p.GetProperty("differences").EnumerateArray().Single().GetProperty("name").GetString());
        });
    }

    [Fact]
    public void Verify_ReportsAFlippedByte_AndQuarantinesOnlyWhenAsked()
    {
        Compile();
        Assert.Equal(0, Kiln("cache", "verify").ExitCode);
        var key = new SnapshotStore(new CacheSettings(_root)).List()[0].Key;
        FlipByte(Path.Combine(EntryDirectory(key), "rank_0", "graph.json"));

        var report = Kiln("cache", "verify", "--json");
        Assert.Equal(1, report.ExitCode);
        using (var json = JsonDocument.Parse(report.Stdout))
        {
            var corrupt = json.RootElement.GetProperty("entries").EnumerateArray().Single(e => e.GetProperty("status").GetString() == "corrupt");
            Assert.Equal(key, corrupt.GetProperty("key").GetString());
            Assert.Contains("checksum mismatch", corrupt.GetProperty("problem").GetString());
            Assert.Equal(1, json.RootElement.GetProperty("ok").GetInt32());
        }
        Assert.True(Directory.Exists(EntryDirectory(key)));

        var quarantine = Kiln("cache", "verify", "--quarantine");
        Assert.Equal(1, quarantine.ExitCode);
        Assert.Contains("(quarantined)", quarantine.Stdout);
        Assert.False(Directory.Exists(EntryDirectory(key)));
        Assert.Single(Directory.EnumerateDirectories(Path.Combine(_root, "quarantine")));
        Assert.Equal(0, Kiln("cache", "verify").ExitCode);
    }

    [Fact]
    public void Prune_RemovesLeastRecentlyUsedFirst_UntilTheBudgetFits()
    {
        Compile();
        var store = new SnapshotStore(new CacheSettings(_root));
        var original = store.List();
        // A copy under a key that differs in its first digit (never the original's own key).
        foreach (var entry in original) CopyDirectory(EntryDirectory(entry.Key), EntryDirectory((entry.Key[0] == 'f' ? "e" : "f") + entry.Key[1..]));
        // Last use is the manifest's modification time: order the four entries oldest to newest.
        var byAge = store.List().Select(e => e.Key).Order(StringComparer.Ordinal).ToList();
        for (var i = 0; i < byAge.Count; i++)
            File.SetLastWriteTimeUtc(Path.Combine(EntryDirectory(byAge[i]), SnapshotStore.ManifestFile), DateTime.UtcNow.AddHours(i - 10));
        var sizes = store.List().ToDictionary(e => e.Key, e => e.Bytes);
        var budget = sizes[byAge[2]] + sizes[byAge[3]];

        using (var generous = Json("prune", "--max-size", "1G"))
            Assert.Empty(generous.RootElement.GetProperty("removed").EnumerateArray());
        using var pruned = Json("prune", "--max-size", $"{budget}");
        Assert.Equal(byAge[..2], pruned.RootElement.GetProperty("removed").EnumerateArray().Select(r => r.GetProperty("key").GetString()));
        Assert.Equal(sizes[byAge[0]] + sizes[byAge[1]], pruned.RootElement.GetProperty("bytes_freed").GetInt64());
        Assert.Equal(2, pruned.RootElement.GetProperty("remaining_entries").GetInt32());
        Assert.Equal(byAge[2..].Order(StringComparer.Ordinal), store.List().Select(e => e.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Clear_RemovesEntriesQuarantineLeftoversAndFreeLocks_KeepsStatistics()
    {
        Compile();
        Directory.CreateDirectory(Path.Combine(_root, "quarantine", "old-entry"));
        Directory.CreateDirectory(Path.Combine(_root, "pipeline", $".staging-0123456789abcdef-999999999-{Guid.NewGuid():N}", "rank_0"));
        File.WriteAllText(Path.Combine(_root, "locks", "stale.lock"), "");
        var locks = Directory.GetFiles(Path.Combine(_root, "locks")).Length;

        using var cleared = Json("clear");
        Assert.Equal(2, cleared.RootElement.GetProperty("entries").GetInt32());
        Assert.Equal(1, cleared.RootElement.GetProperty("quarantined").GetInt32());
        Assert.Equal(1, cleared.RootElement.GetProperty("staging_leftovers").GetInt32());
        Assert.Equal(locks, cleared.RootElement.GetProperty("locks").GetInt32());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_root, "pipeline")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_root, "locks")));
        Assert.False(Directory.Exists(Path.Combine(_root, "quarantine")));
        Assert.True(File.Exists(Path.Combine(_root, "stats.json")));
        Assert.Contains("removed 0 entries", Kiln("cache", "clear").Stdout);
    }

    [Fact]
    public void Stats_CountHitsAndMissesByReasonAcrossRuns()
    {
        Compile(); // miss: no entry
        Compile(); // hit at the final point
        foreach (var entry in new SnapshotStore(new CacheSettings(_root)).List()) FlipByte(Path.Combine(EntryDirectory(entry.Key), "rank_0", "graph.json"));
        Compile(); // miss: corrupt entry (both quarantined, one run)

        using var stats = Json("stats");
        var root = stats.RootElement;
        Assert.Equal(1, root.GetProperty("hits").GetInt64());
        Assert.Equal(1, root.GetProperty("misses").GetProperty("no entry").GetInt64());
        Assert.Equal(1, root.GetProperty("misses").GetProperty("corrupt entry").GetInt64());
        Assert.Equal(2, root.GetProperty("miss_count").GetInt64());
        Assert.Equal(1, root.GetProperty("quarantined").GetInt64());
        Assert.Equal(2, root.GetProperty("entries").GetInt32());
        Assert.Equal(0, Kiln("cache", "stats").ExitCode);
    }

    [Fact]
    public void Verify_ReportsUnreadableEntriesAsFindings()
    {
        Compile();
        var keys = new SnapshotStore(new CacheSettings(_root)).List().Select(e => e.Key).Order(StringComparer.Ordinal).ToArray();
        File.SetUnixFileMode(Path.Combine(EntryDirectory(keys[0]), "rank_0", "graph.json"), UnixFileMode.None);
        File.SetUnixFileMode(EntryDirectory(keys[1]), UnixFileMode.None);

        var verify = KilnAsCacheOwner("cache", "verify");
        Assert.Equal(1, verify.ExitCode);
        Assert.DoesNotContain("Access to the path", verify.Stderr + verify.Stdout);
        Assert.Contains($"{keys[0][..16]} unreadable: unreadable entry: rank_0/graph.json: permission denied", verify.Stdout);
        Assert.Contains($"{keys[1][..16]} unreadable: unreadable entry: manifest.json: permission denied", verify.Stdout);
        Assert.Contains("0 ok, 2 corrupt or unreadable", verify.Stdout);
        var list = KilnAsCacheOwner("cache", "list");
        Assert.True(list.ExitCode == 0, list.Stderr);
    }

    [Fact]
    public void AnEmptyCacheDir_IsAnError_AnEmptyKilnCacheDir_FallsBack()
    {
        foreach (var args in new[] { new[] { "compile", "--cache-dir", "" }, ["cache", "list", "--cache-dir", ""] })
        {
            var result = Kiln(args);
            Assert.Equal(2, result.ExitCode);
            Assert.Equal("kiln: error: --cache-dir: the cache root is empty (leave the option out for the default root)", result.Stderr.Trim());
        }
        // An empty variable is "not set": the next place in the order ($XDG_CACHE_HOME/kiln) is used.
        var xdg = Path.Combine(_temp.Path, "xdg");
        var fallback = KilnCli.RunWith(_temp.Path, new Dictionary<string, string> { ["KILN_CACHE_DIR"] = "", ["XDG_CACHE_HOME"] = xdg }, "compile");
        Assert.True(fallback.ExitCode == 0, fallback.Stderr);
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(xdg, "kiln", "pipeline")));
    }

    [Fact]
    public void AGroupWritableRoot_IsRefusedUnlessTrusted()
    {
        Directory.CreateDirectory(_root);
        File.SetUnixFileMode(_root, (UnixFileMode)0b111_111_111);
        var refused = Kiln("cache", "list");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains(_root, refused.Stderr);
        Assert.Contains("the trust_shared_root setting allows it", refused.Stderr);
        Assert.Equal(0, Kiln("cache", "list", "--cache-trust-shared-root").ExitCode);
    }

    private CliResult Kiln(params string[] args) =>
        KilnCli.RunWith(_temp.Path, new Dictionary<string, string> { ["KILN_CACHE_DIR"] = _root }, args);

    // Mode 000 stops only a user other than root: when the tests run as root, the cache is handed to
    // user 65534 and kiln runs as that user (setpriv), so the owner checks still pass.
    private CliResult KilnAsCacheOwner(params string[] args)
    {
        if (Environment.UserName != "root") return Kiln(args);
        const string uid = "65534";
        File.SetUnixFileMode(_temp.Path, (UnixFileMode)0b111_101_101);
        using (var chown = System.Diagnostics.Process.Start("chown", ["-R", $"{uid}:{uid}", _root])) chown.WaitForExit();
        var environment = new Dictionary<string, string> { ["KILN_CACHE_DIR"] = _root, ["HOME"] = _temp.Path, ["DOTNET_CLI_HOME"] = _temp.Path };
        var start = new System.Diagnostics.ProcessStartInfo("setpriv") { WorkingDirectory = _temp.Path, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "dotnet", KilnCli.Dll }.Concat(args)) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new CliResult(process.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }

    private void Compile()
    {
        var result = Kiln("compile", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    private JsonDocument Json(params string[] args)
    {
        var result = Kiln(["cache", .. args, "--json"]);
        Assert.True(result.ExitCode == 0, $"kiln cache {string.Join(" ", args)}: {result.Stderr}");
        return JsonDocument.Parse(result.Stdout);
    }

    private string EntryDirectory(string key) => Path.Combine(_root, "pipeline", key);

    private SnapshotManifest Manifest(string key) => SnapshotStore.ReadManifest(EntryDirectory(key));

    private static void FlipByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
