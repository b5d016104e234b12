using System.Security.Cryptography;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;
using Xunit;

namespace Kiln.Tests.Cache;

/// <summary>
/// The save path hashes files as it writes them and the restore path parses the bytes it verified:
/// the manifest must still hold every file's true size and SHA-256, and a restore must still refuse
/// any changed byte.
/// </summary>
public sealed class SnapshotDigestTests
{
    [Fact]
    public void SafetensorsWriterDigestIsTheFilesSha256()
    {
        using var dir = new TempDir();
        var path = dir.File("b.safetensors");
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var writer = SafetensorsWriter.Create(path, [new("a", DType.F32, [3]), new("b", DType.F16, [5])], digest: digest))
        {
            writer.Write(new byte[12].Select((_, i) => (byte)i).ToArray());
            writer.Write(new byte[10].Select((_, i) => (byte)(100 + i)).ToArray());
            writer.Complete();
        }
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(path)), digest.GetHashAndReset());
    }

    [Fact]
    public void ManifestHoldsTheWrittenFilesSizesAndChecksumsAndTheEntryRestoresTheSameGraph()
    {
        using var dir = new TempDir();
        var (store, key, graph) = SavedEntry(dir);
        var entry = store.EntryDirectory(key.Key);

        var manifest = SnapshotStore.ReadManifest(entry);
        Assert.Equal(2, manifest.Files.Count);
        foreach (var file in manifest.Files)
        {
            var bytes = File.ReadAllBytes(Path.Combine(entry, file.Path));
            Assert.Equal(bytes.Length, file.Bytes);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), file.Sha256);
        }
        var restored = store.TryRestore(key, 0, OpRegistry.Default);
        Assert.True(restored.Hit, restored.MissReason);
        Assert.Equal(GraphHash.Of(graph), GraphHash.Of(restored.Graph!));
        Assert.NotEmpty(restored.Graph!.Buffers);
        Assert.All(graph.Buffers, b => Assert.Equal(b.Data, restored.Graph!.Buffers.Single(r => r.Name == b.Name).Data));
    }

    [Theory]
    [InlineData(SnapshotFiles.GraphFile)]
    [InlineData(SnapshotFiles.BuffersFile)]
    public void AFlippedByteInAFileReadOnceIsACorruptEntry(string name)
    {
        using var dir = new TempDir();
        var (store, key, _) = SavedEntry(dir);
        var path = Path.Combine(store.EntryDirectory(key.Key), SnapshotStore.RankDirectory(0), name);
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 1;
        File.WriteAllBytes(path, bytes);

        var outcome = store.TryRestore(key, 0, OpRegistry.Default);

        Assert.False(outcome.Hit);
        Assert.Contains("checksum mismatch", outcome.MissReason);
        Assert.False(Directory.Exists(store.EntryDirectory(key.Key))); // quarantined
    }

    // A small model's final graph (with its RoPE cache buffers) saved as one entry.
    private static (SnapshotStore Store, SnapshotKey Key, ModelGraph Graph) SavedEntry(TempDir dir)
    {
        var options = new TestModelOptions("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48, Vocab: 50, DType: DType.F32, Seed: 1, MaxPositions: 64);
        RandomCheckpointWriter.Write(options, dir.File("model"));
        using var checkpoint = Checkpoint.Open(dir.File("model"));
        var pipeline = PipelineConfig.Load();
        var graph = ModelCompiler.Compile(checkpoint, pipeline).Graph;
        var key = SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers)[^1];
        var store = new SnapshotStore(new CacheSettings(dir.File("cache")));
        Directory.CreateDirectory(store.Settings.PipelineDirectory);
        Assert.True(store.Save(key, new PointInfo(key.EntryIndex, "select_session_options", "compile"), graph, 1, SingleProcess.Instance), store.SaveFailed);
        return (store, key, graph);
    }
}
