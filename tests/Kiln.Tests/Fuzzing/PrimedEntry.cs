using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Tests.Cache;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// A cache primed once with the default model's snapshots, for fuzzing its final entry in process: each
/// case writes a mutated graph.json or manifest.json into the entry (re-checksummed where asked, so the
/// integrity check passes) and restores it through a read-only store, which never quarantines, so the
/// same entry serves every case. The checkpoint stays open for the model checks.
/// </summary>
public sealed class PrimedEntry : IDisposable
{
    private readonly CacheDir _cache = new();
    private readonly SnapshotStore _reader;

    public PrimedEntry()
    {
        CachedCompile.Run(TestPaths.DefaultModel, _cache.Settings());
        Entry = _cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Stage == "compile");
        Graph = File.ReadAllBytes(HostileEntry.GraphFile(Entry));
        Manifest = File.ReadAllText(Path.Combine(Entry, SnapshotStore.ManifestFile));
        var manifest = SnapshotStore.ReadManifest(Entry);
        Key = new SnapshotKey(manifest.Point.Index, manifest.Key, manifest.Components);
        Checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        Model = ModelRecord.Of(Checkpoint);
        _reader = new SnapshotStore(_cache.Settings(CacheMode.ReadOnly));
    }

    /// <summary>The final entry's folder.</summary>
    public string Entry { get; }

    /// <summary>rank_0/graph.json as Kiln wrote it.</summary>
    public byte[] Graph { get; }

    /// <summary>manifest.json as Kiln wrote it.</summary>
    public string Manifest { get; }

    public SnapshotKey Key { get; }

    public Checkpoint Checkpoint { get; }

    public ModelRecord Model { get; }

    /// <summary>Writes <paramref name="graph"/> as rank 0's graph.json with its size and checksum in the original manifest, then restores.</summary>
    public RestoreOutcome RestoreGraph(byte[] graph)
    {
        File.WriteAllBytes(HostileEntry.GraphFile(Entry), graph);
        var manifest = JsonNode.Parse(Manifest)!;
        var file = manifest["files"]!.AsArray().Single(f => f!["path"]!.ToString() == "rank_0/graph.json")!;
        file["bytes"] = graph.Length;
        file["sha256"] = Convert.ToHexStringLower(SHA256.HashData(graph));
        File.WriteAllText(Path.Combine(Entry, SnapshotStore.ManifestFile), manifest.ToJsonString());
        return Restore();
    }

    /// <summary>Writes the original graph.json and <paramref name="manifest"/> as the manifest's bytes, then restores.</summary>
    public RestoreOutcome RestoreManifest(byte[] manifest)
    {
        File.WriteAllBytes(HostileEntry.GraphFile(Entry), Graph);
        File.WriteAllBytes(Path.Combine(Entry, SnapshotStore.ManifestFile), manifest);
        return Restore();
    }

    private RestoreOutcome Restore() => _reader.TryRestore(Key, 0, OpRegistry.Default, Model, weightsBound: true);

    /// <summary>
    /// The contract for one restore: a miss has a one-line reason; a hit's graph verifies, fits the model,
    /// lowers to ONNX and runs (an ONNX Runtime session and one forward pass), so nothing fails later.
    /// </summary>
    public void AssertMissOrSoundHit(RestoreOutcome outcome, bool runHit)
    {
        if (!outcome.Hit)
        {
            Assert.False(string.IsNullOrWhiteSpace(outcome.MissReason));
            Assert.DoesNotContain('\n', outcome.MissReason);
            // A reason naming an exception type is the restore's catch-all: a reader let through what it should refuse.
            Assert.DoesNotContain("Exception", outcome.MissReason);
            return;
        }
        var graph = outcome.Graph!;
        GraphVerifier.Verify(graph);
        Assert.Null(Model.Mismatch(graph, weightsBound: true));
        GraphLowering.ToOnnx(graph);
        if (!runHit) return;
        using var loaded = LoadedModel.Create(Checkpoint.Open(TestPaths.DefaultModel), graph, new SessionSettings(IntraOpThreads: 1));
        Assert.Equal(CachedCompile.Ids.Length * loaded.VocabSize, loaded.Forward(CachedCompile.Ids, Enumerable.Range(0, CachedCompile.Ids.Length).Select(i => (long)i).ToArray()).Length);
    }

    public void Dispose()
    {
        Checkpoint.Dispose();
        _cache.Dispose();
    }
}
