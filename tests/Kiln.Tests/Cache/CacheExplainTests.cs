using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>
/// `kiln cache explain` through its library API: after one compile of a copy of the llama_gqa oracle
/// checkpoint fills a fresh cache, each change of a key component misses and is named as the one
/// component that differs from the nearest entry.
/// </summary>
public sealed class CacheExplainTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _model;
    private readonly CacheSettings _settings;

    public CacheExplainTests()
    {
        _model = Path.Combine(_temp.Path, "model");
        Directory.CreateDirectory(_model);
        foreach (var file in Directory.EnumerateFiles(TestPaths.Oracle("llama_gqa"))) File.Copy(file, Path.Combine(_model, Path.GetFileName(file)));
        _settings = new CacheSettings(Path.Combine(_temp.Path, "cache"));
        using var checkpoint = Checkpoint.Open(_model);
        Assert.Equal("miss", new PipelineCache(_settings).Compile(checkpoint, PipelineConfig.Load()).Cache!.Status);
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void SameModelAndPipeline_HitsAtEveryPoint()
    {
        var explanation = Explain();
        Assert.Equal("LlamaForCausalLM", explanation.Architecture);
        Assert.Equal(2, explanation.EntriesForArchitecture);
        Assert.Equal(2, explanation.Points.Count);
        Assert.All(explanation.Points, p => Assert.True(p.Hit));
    }

    [Fact]
    public void ConfigValueChange_IsNamedModelConfig()
    {
        EditConfig(c => c["rms_norm_eps"] = 1e-6);
        AssertEveryPointMissesOn(Explain(), "model.config");
    }

    [Fact]
    public void TensorShapeChange_WithTheSameConfig_IsNamedCheckpointFingerprint()
    {
        // A re-exported checkpoint whose config did not change but one tensor did (here the final norm).
        RewriteWeights(t => t.Name == "model.norm.weight" ? [t.Shape[0] + 1] : t.Shape);
        AssertEveryPointMissesOn(Explain(), "checkpoint.fingerprint");
    }

    [Fact]
    public void TensorShapeChange_WithTheMatchingConfigChange_NamesBoth()
    {
        // The realistic case: a model with another intermediate size changes config.json and the MLP shapes.
        EditConfig(c => c["intermediate_size"] = 96);
        RewriteWeights(t => t.Name.Contains(".mlp.", StringComparison.Ordinal)
            ? t.Name.EndsWith("down_proj.weight", StringComparison.Ordinal) ? [t.Shape[0], 96] : [96, t.Shape[1]]
            : t.Shape);
        AssertEveryPointMissesOn(Explain(), "model.config", "checkpoint.fingerprint");
    }

    [Fact]
    public void TransformSettingBeforeTheFirstPoint_MissesAtBothPoints()
    {
        var explanation = Explain(PipelineConfig.Load(sets: ["fuse_swiglu.enabled=false"]));
        var index = IndexOf("fuse_swiglu");
        AssertEveryPointMissesOn(explanation, $"transform.{index}.fuse_swiglu");
        var difference = explanation.Points[0].Differences.Single();
        Assert.Equal("fuse_swiglu(enabled=true)", difference.EntryValue);
        Assert.Equal("fuse_swiglu(enabled=false)", difference.RequestValue);
        Assert.Contains($"transform.{index}.fuse_swiglu differs", difference.Summary);
    }

    [Fact]
    public void TransformSettingAfterTheFirstPoint_HitsThereAndMissesAtTheLast()
    {
        var explanation = Explain(PipelineConfig.Load(sets: ["select_session_options.prepacking_max_weight_bytes=1000"]));
        Assert.True(explanation.Points[0].Hit);
        Assert.False(explanation.Points[1].Hit);
        Assert.Equal([$"transform.{IndexOf("select_session_options")}.select_session_options"], explanation.Points[1].Differences.Select(d => d.Name));
    }

    [Fact]
    public void WorldSize_IsNamedLayout_FromThePointWhereTheLayoutJoins()
    {
        var pipeline = PipelineConfig.Load();
        using var checkpoint = Checkpoint.Open(_model);
        var explanation = Inspector().Explain(pipeline, SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers, worldSize: 2, tensorParallel: 2));
        // The default pipeline has no sharding transform: the layout joins the key at load_weights, after the first point.
        Assert.True(explanation.Points[0].Hit);
        var difference = explanation.Points[1].Differences.Single();
        Assert.Equal("layout", difference.Name);
        Assert.Equal("world_size=1, tensor_parallel=1", difference.EntryValue);
        Assert.Equal("world_size=2, tensor_parallel=2", difference.RequestValue);
    }

    [Fact]
    public void EntryOfAnotherSchemaVersion_IsNamedSchema()
    {
        // What an older Kiln would have left: the same model and pipeline, another schema component, hence another key.
        var store = new SnapshotStore(_settings);
        foreach (var entry in store.List())
        {
            var manifest = entry.Manifest!;
            var components = manifest.Components.Select(c => c.Name == "schema" ? c with { Value = "ir=0, recipe=0, snapshot=0" } : c).ToList();
            var oldKey = SnapshotKeys.Digest("old schema " + entry.Key);
            var oldDirectory = store.EntryDirectory(oldKey);
            Directory.Move(store.EntryDirectory(entry.Key), oldDirectory);
            File.WriteAllText(Path.Combine(oldDirectory, SnapshotStore.ManifestFile), JsonSerializer.Serialize(
                manifest with { SchemaVersion = 0, Key = oldKey, Components = components }, CacheJsonContext.Default.SnapshotManifest));
        }
        AssertEveryPointMissesOn(Explain(), "schema");
    }

    [Fact]
    public void NoEntryForTheArchitecture_SaysSo()
    {
        var pipeline = PipelineConfig.Load();
        using var qwen = Checkpoint.Open(TestPaths.Oracle("qwen2"));
        var explanation = Inspector().Explain(pipeline, SnapshotKeys.ForPoints(qwen, pipeline, FingerprintMode.Headers));
        Assert.Equal(0, explanation.EntriesForArchitecture);
        Assert.All(explanation.Points, p =>
        {
            Assert.False(p.Hit);
            Assert.Null(p.NearestKey);
            Assert.Empty(p.Differences);
            Assert.Equal("no entry for this model architecture", p.Note);
        });
    }

    [Fact]
    public void ComponentDifference_ComparesByName()
    {
        var differences = ComponentDifference.Between(
            [new("a", "1"), new("b", "2"), new("gone", "x")],
            [new("a", "1"), new("b", "3"), new("new", "y")]);
        Assert.Equal(
            ["b differs (entry 2 vs request 3)", "new only in the request (y)", "gone only in the entry (x)"],
            differences.Select(d => d.Summary));
    }

    private CacheInspector Inspector() => CacheInspector.Open(_settings);

    private KeyExplanation Explain(PipelineConfig? pipeline = null)
    {
        pipeline ??= PipelineConfig.Load();
        using var checkpoint = Checkpoint.Open(_model);
        return Inspector().Explain(pipeline, SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers));
    }

    private static void AssertEveryPointMissesOn(KeyExplanation explanation, params string[] components)
    {
        Assert.Equal(2, explanation.Points.Count);
        foreach (var point in explanation.Points)
        {
            Assert.False(point.Hit);
            Assert.NotNull(point.NearestKey);
            Assert.Equal(point.Point.Index, point.NearestPoint!.Index);
            Assert.Equal(components, point.Differences.Select(d => d.Name));
        }
    }

    // A key component counts the transforms only, not the snapshot points between them.
    private static int IndexOf(string transform) =>
        PipelineConfig.Load().Entries.OfType<TransformStep>().Select((e, i) => (e, i)).First(x => x.e.Name == transform).i;

    private void EditConfig(Action<JsonObject> edit)
    {
        var path = Path.Combine(_model, Checkpoint.ConfigFileName);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    // Rewrites model.safetensors with the shapes <paramref name="shape"/> gives (changed tensors are zeros).
    private void RewriteWeights(Func<TensorInfo, long[]> shape)
    {
        var path = Path.Combine(_model, Checkpoint.SingleWeightsFileName);
        var rewritten = path + ".new";
        using (var source = SafetensorsFile.Open(path))
        {
            var tensors = source.Tensors.Values.ToList();
            using var writer = SafetensorsWriter.Create(rewritten, tensors.Select(t => new SafetensorsEntry(t.Name, t.DType, shape(t))));
            foreach (var entry in writer.Order)
            {
                var original = source.Tensors[entry.Name];
                writer.WriteTensor(entry.Name, entry.Shape.SequenceEqual(original.Shape) ? source.GetBytes(original) : new byte[entry.ByteLength]);
            }
            writer.Complete();
        }
        File.Move(rewritten, path, overwrite: true);
    }
}
