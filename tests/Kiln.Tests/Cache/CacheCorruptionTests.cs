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
        { "link out of the entry", "rank_0/buffers.safetensors is a link" },
        { "manifest fields null", "corrupt entry" },
        { "manifest not json", "corrupt entry" },
        { "manifest key differs", "manifest key differs" },
        { "manifest is a link", "manifest.json is a link" },
        { "FIFO in place of a file", "rank_0/buffers.safetensors is a FIFO, not a regular file" },
        { "rank folder is a link", "' passes through a link" },
        { "manifest duplicated property", "manifest.json: " },
        { "graph duplicated property", "malformed graph JSON" },
        { "graph invalid UTF-8", "graph JSON is not valid UTF-8" },
        { "graph too deep", "malformed graph JSON" },
        { "vocab_size not a number", "malformed graph JSON" },
        { "vocab_size changed", "model vocab_size is '1000', the model's is '512'" },
        { "max positions changed", "model context_length is '4096', the model's is '512'" },
        { "kv heads differ", "key/value cache of 5 layers, 2 kv heads of dimension 8; config.json has 5, 4 and 8" },
        { "present output renamed", "output present_key.0 is missing" },
        { "extra graph input", "input 'evil' is not one the runtime feeds" },
        { "recipe names a missing tensor", "source tensor 'model.evil.weight' is not in the checkpoint" },
        { "recipe slices out of range", "is outside dimension 0" },
        { "negative dimension", "negative dimension" },
        { "huge shape", "elements" },
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
        Assert.StartsWith(DefaultPoints.FirstShort + " ", report.Point);
        Assert.Contains(reason, report.Reason);
        Assert.Contains("corrupt entry", report.Reason);
        Assert.Equal(uncached.Value, logits);
        Assert.Single(Directory.GetDirectories(cache.Quarantine));
        Assert.Equal(1, CacheStats.Read(cache.Root).Quarantined);
        cache.AssertEntriesValid();

        var again = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings()).Cache!;
        Assert.Equal("hit", again.Status);
        Assert.StartsWith(DefaultPoints.FinalShort + " ", again.Point);
        Assert.Null(again.Reason);
    }

    [Fact]
    public void AnEntryThatPassesEveryCheckButBreaksALaterTransformIsQuarantinedAndCompiledAfresh()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var final = FinalEntry(cache);
        Directory.Delete(final, recursive: true);
        var early = cache.Entries().Single();
        // "key > query" where the causal mask says "key <= query": same types, so the graph verifies and fits
        // the model, but insert_kv_cache no longer finds a causal mask and refuses the graph.
        HostileEntry.EditGraph(early, g => g["nodes"]!.AsArray().First(n => n!["op"]!.ToString() == "less_equal")!["op"] = "greater");

        var (logits, report) = CachedCompile.Logits(TestPaths.DefaultModel, cache.Settings());
        Assert.Equal("miss", report.Status);
        Assert.Contains("corrupt entry: resuming the pipeline from it failed: ", report.Reason);
        Assert.Equal(uncached.Value, logits);
        Assert.Single(Directory.GetDirectories(cache.Quarantine));
        Assert.Equal(2, cache.Entries().Count);
        cache.AssertEntriesValid();
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
                Assert.Contains("\"op\":\"swiglu\"", text);
                HostileEntry.Rewrite(entry, graph, text.Replace("\"op\":\"swiglu\"", "\"op\":\"evil_exec\""));
                break;
            case "graph fields null":
                var document = JsonNode.Parse(File.ReadAllText(graph))!;
                document["nodes"]![0]!["inputs"] = null;
                document["outputs"] = null;
                HostileEntry.Rewrite(entry, graph, document.ToJsonString());
                break;
            case "graph list element null":
                var withNullInput = JsonNode.Parse(File.ReadAllText(graph))!;
                withNullInput["nodes"]![0]!["inputs"] = new JsonArray((JsonNode?)null);
                HostileEntry.Rewrite(entry, graph, withNullInput.ToJsonString());
                break;
            case "buffer shape mismatch":
                var withBuffers = JsonNode.Parse(File.ReadAllText(graph))!;
                var buffer = withBuffers["buffers"]!.AsArray().FirstOrDefault() ?? throw new InvalidOperationException("no buffer to damage");
                buffer["shape"] = new JsonArray(1_000_000_000, 1_000_000_000);
                HostileEntry.Rewrite(entry, graph, withBuffers.ToJsonString());
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
                HostileEntry.EditManifest(entry, m => { m["files"] = null; m["point"] = null; });
                break;
            case "manifest not json":
                File.WriteAllText(Path.Combine(entry, SnapshotStore.ManifestFile), "{\"schema_version\": 1, ");
                break;
            case "manifest key differs":
                HostileEntry.EditManifest(entry, m => m["key"] = new string('0', 64));
                break;
            case "manifest is a link":
                var manifestPath = Path.Combine(entry, SnapshotStore.ManifestFile);
                File.Move(manifestPath, cache.Outside("manifest.json"));
                File.CreateSymbolicLink(manifestPath, cache.Outside("manifest.json"));
                break;
            case "FIFO in place of a file":
                // Opening a FIFO for reading blocks until a writer comes: a restore must refuse it, not wait.
                File.Delete(buffers);
                HostileEntry.MakeFifo(buffers);
                break;
            case "rank folder is a link":
                Directory.Move(Path.Combine(entry, "rank_0"), cache.Outside("rank_0"));
                Directory.CreateSymbolicLink(Path.Combine(entry, "rank_0"), cache.Outside("rank_0"));
                break;
            case "manifest duplicated property":
                var manifestText = File.ReadAllText(Path.Combine(entry, SnapshotStore.ManifestFile));
                File.WriteAllText(Path.Combine(entry, SnapshotStore.ManifestFile), manifestText.Replace("\"key\":", "\"key\": \"0\", \"key\":"));
                break;
            case "graph duplicated property":
                // The second schema_version would win in a lax reader.
                var graphText = File.ReadAllText(graph);
                HostileEntry.Rewrite(entry, graph, "{\"schema_version\": 99," + graphText.TrimStart()[1..]);
                break;
            case "graph invalid UTF-8":
                var utf8 = File.ReadAllBytes(graph);
                var at = Array.IndexOf(utf8, (byte)'"', Array.IndexOf(utf8, (byte)'"') + 1) - 1; // inside the first property name
                utf8[at] = 0xFF;
                HostileEntry.Rewrite(entry, graph, utf8);
                break;
            case "graph too deep":
                HostileEntry.EditGraph(entry, g => g["metadata"] = Enumerable.Range(0, 200).Aggregate((JsonNode)new JsonArray(), (inner, _) => new JsonArray(inner)));
                break;
            case "vocab_size not a number":
                HostileEntry.EditGraph(entry, g => g["model"]!["vocab_size"] = "many");
                break;
            case "vocab_size changed":
                HostileEntry.EditGraph(entry, g => g["model"]!["vocab_size"] = 1000);
                break;
            case "max positions changed":
                HostileEntry.EditGraph(entry, g => g["model"]!["context_length"] = 4096);
                break;
            case "kv heads differ":
                HostileEntry.EditGraph(entry, g => g["metadata"]!["kv_cache.kv_heads"] = "2");
                break;
            case "present output renamed":
                HostileEntry.EditGraph(entry, g => RenameValue(g, "present_key.0", "present_key.0x"));
                break;
            case "extra graph input":
                HostileEntry.EditGraph(entry, g => g["inputs"]!.AsArray().Add(new JsonObject { ["name"] = "evil", ["dtype"] = "i64", ["shape"] = new JsonArray(1) }));
                break;
            case "recipe names a missing tensor":
                HostileEntry.EditGraph(entry, g => g["parameters"]![0]!["recipe"]!["sources"]![0] = "model.evil.weight");
                break;
            case "recipe slices out of range":
                HostileEntry.EditGraph(entry, g => g["parameters"]![0]!["recipe"]!["steps"]!.AsArray()
                    .Insert(0, new JsonObject { ["op"] = "slice", ["dim"] = 0, ["start"] = 1_000_000, ["length"] = 1 }));
                break;
            case "negative dimension":
                HostileEntry.EditGraph(entry, g => g["parameters"]![0]!["shape"]![0] = -1);
                break;
            case "huge shape":
                HostileEntry.EditGraph(entry, g => g["parameters"]![0]!["shape"] = new JsonArray(1L << 40, 1L << 40));
                break;
            default:
                throw new ArgumentException(damage);
        }
    }

    // Renames a value everywhere it is named: where a node defines it, where nodes read it, in the outputs.
    private static void RenameValue(JsonNode graph, string from, string to)
    {
        foreach (var node in graph["nodes"]!.AsArray())
        {
            foreach (var output in node!["outputs"]!.AsArray()) if (output!["name"]!.ToString() == from) output["name"] = to;
            var inputs = node["inputs"]!.AsArray();
            for (var i = 0; i < inputs.Count; i++) if (inputs[i]!.ToString() == from) inputs[i] = to;
        }
        var outputs = graph["outputs"]!.AsArray();
        for (var i = 0; i < outputs.Count; i++) if (outputs[i]!.ToString() == from) outputs[i] = to;
    }

    private static void AddManifestFile(string entry, string name, string content) => HostileEntry.EditManifest(entry, m =>
        m["files"]!.AsArray().Add(new JsonObject
        {
            ["path"] = name,
            ["bytes"] = new FileInfo(content).Length,
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(content))),
        }));
}
