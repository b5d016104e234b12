using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// Whatever a cache entry contains, a run gives the uncached answer: a damaged or hostile entry is a
/// miss with a stated reason, moved to quarantine and counted, and the next run publishes a good one.
/// </summary>
public sealed class CacheCorruptionTests(UncachedLogits uncached) : IClassFixture<UncachedLogits>
{
    public static TheoryData<string, string> Damages => new()
    {
        { "truncated graph", "rank_0/graph.json has" },
        { "flipped buffer byte", "rank_0/buffers.safetensors: checksum mismatch" },
        { "missing file", "rank_0/graph.json is missing" },
        { "unknown op", "unknown op 'evil_exec'" },
        { "graph fields null", "corrupt entry" },
        { "graph list element null", "corrupt entry" },
        { "buffer shape mismatch", "corrupt entry" },
        { "parent path in manifest", "unsafe file name '../x'" },
        { "absolute path in manifest", "unsafe file name '/etc/hostname'" },
        { "link out of the entry", "is or passes through a link" },
        { "manifest fields null", "corrupt entry" },
        { "manifest not json", "corrupt entry" },
        { "manifest key differs", "manifest key differs" },
    };

    [Theory]
    [MemberData(nameof(Damages))]
    public void ADamagedFinalEntryIsQuarantinedAndTheAnswerIsUnchanged(string damage, string reason)
    {
        using var cache = new CacheDir();
        Assert.Equal("miss", CachedCompile.Run(TestPaths.DefaultModel, cache.Settings()).Cache!.Status);
        var final = FinalEntry(cache);
        Damage(damage, final, cache);

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        // The earlier point is intact: the run resumes from it and says why the final point was not used.
        Assert.Equal("hit", report.Status);
        Assert.StartsWith("point 9 ", report.Point);
        Assert.Contains(reason, report.Reason);
        Assert.Contains("corrupt entry", report.Reason);
        Assert.Equal(uncached.Value, logits);
        Assert.Single(Directory.GetDirectories(cache.Quarantine));
        Assert.Equal(1, CacheStats.Read(cache.Root).Quarantined);
        cache.AssertEntriesValid();

        var again = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings()).Cache!;
        Assert.Equal("hit", again.Status);
        Assert.StartsWith("point 16 ", again.Point);
        Assert.Null(again.Reason);
    }

    [Fact]
    public void ReadOnlyModeNeverWritesEvenOverACorruptEntry()
    {
        using var cache = new CacheDir();
        var readOnly = cache.Settings(CacheMode.ReadOnly);
        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, readOnly);
        Assert.Equal("off", report.Status); // no root yet, and read-only never creates it
        Assert.False(Directory.Exists(cache.Root));
        Assert.Equal(uncached.Value, logits);

        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var before = cache.Listing();
        Assert.Equal("hit", CachedCompile.Run(TestPaths.DefaultModel, readOnly).Cache!.Status);
        Assert.Equal(before, cache.Listing());

        Damage("flipped buffer byte", FinalEntry(cache), cache);
        before = cache.Listing();
        (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, readOnly);
        Assert.Equal("hit", report.Status);
        Assert.Contains("checksum mismatch", report.Reason);
        Assert.Equal(uncached.Value, logits);
        Assert.Equal(before, cache.Listing());
    }

    private static string FinalEntry(CacheDir cache) =>
        cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Stage == "compile");

    private static void Damage(string damage, string entry, CacheDir cache)
    {
        var graph = Path.Combine(entry, "rank_0", "graph.json");
        var buffers = Path.Combine(entry, "rank_0", "buffers.safetensors");
        switch (damage)
        {
            case "truncated graph":
                File.WriteAllBytes(graph, File.ReadAllBytes(graph)[..1000]);
                break;
            case "flipped buffer byte":
                var bytes = File.ReadAllBytes(buffers);
                bytes[^7] ^= 0x10;
                File.WriteAllBytes(buffers, bytes);
                break;
            case "missing file":
                File.Delete(graph);
                break;
            case "unknown op":
                // Checksums recomputed: only the op-name check can catch it.
                var text = File.ReadAllText(graph);
                Assert.Contains("\"op\": \"swiglu\"", text);
                Rewrite(entry, graph, text.Replace("\"op\": \"swiglu\"", "\"op\": \"evil_exec\""));
                break;
            case "graph fields null":
                var document = JsonNode.Parse(File.ReadAllText(graph))!;
                document["nodes"]![0]!["inputs"] = null;
                document["outputs"] = null;
                Rewrite(entry, graph, document.ToJsonString());
                break;
            case "graph list element null":
                var withNullInput = JsonNode.Parse(File.ReadAllText(graph))!;
                withNullInput["nodes"]![0]!["inputs"] = new JsonArray((JsonNode?)null);
                Rewrite(entry, graph, withNullInput.ToJsonString());
                break;
            case "buffer shape mismatch":
                var withBuffers = JsonNode.Parse(File.ReadAllText(graph))!;
                var buffer = withBuffers["buffers"]!.AsArray().FirstOrDefault() ?? throw new InvalidOperationException("no buffer to damage");
                buffer["shape"] = new JsonArray(1_000_000_000, 1_000_000_000);
                Rewrite(entry, graph, withBuffers.ToJsonString());
                break;
            case "parent path in manifest":
                File.WriteAllText(cache.Outside("x"), "outside");
                AddManifestFile(entry, "../x", cache.Outside("x"));
                break;
            case "absolute path in manifest":
                AddManifestFile(entry, "/etc/hostname", "/etc/hostname");
                break;
            case "link out of the entry":
                // The link's target has the right bytes: only the link check can catch it.
                var outside = cache.Outside("buffers.safetensors");
                File.Copy(buffers, outside);
                File.Delete(buffers);
                File.CreateSymbolicLink(buffers, outside);
                break;
            case "manifest fields null":
                EditManifest(entry, m => { m["files"] = null; m["point"] = null; });
                break;
            case "manifest not json":
                File.WriteAllText(Path.Combine(entry, SnapshotStore.ManifestFile), "{\"schema_version\": 1, ");
                break;
            case "manifest key differs":
                EditManifest(entry, m => m["key"] = new string('0', 64));
                break;
            default:
                throw new ArgumentException(damage);
        }
    }

    // Writes a file and records its new size and checksum in the manifest, as a hostile writer would.
    private static void Rewrite(string entry, string path, string text)
    {
        File.WriteAllText(path, text);
        var relative = Path.GetRelativePath(entry, path).Replace('\\', '/');
        EditManifest(entry, m =>
        {
            var file = m["files"]!.AsArray().Single(f => f!["path"]!.ToString() == relative)!;
            file["bytes"] = new FileInfo(path).Length;
            file["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
        });
    }

    private static void AddManifestFile(string entry, string name, string content) => EditManifest(entry, m =>
        m["files"]!.AsArray().Add(new JsonObject
        {
            ["path"] = name,
            ["bytes"] = new FileInfo(content).Length,
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(content))),
        }));

    private static void EditManifest(string entry, Action<JsonNode> edit)
    {
        var path = Path.Combine(entry, SnapshotStore.ManifestFile);
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
    }
}
