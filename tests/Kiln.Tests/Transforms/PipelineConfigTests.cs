using Kiln.Transforms;

namespace Kiln.Tests.Transforms;

public sealed class PipelineConfigTests
{
    private static readonly TransformRegistry Registry = TestRegistries.WithTestTransforms;

    [Fact]
    public void Default_pipeline_loads_in_stage_order()
    {
        var pipeline = PipelineConfig.Load();
        Assert.NotEmpty(pipeline.Entries);
        Assert.Contains(pipeline.Entries, e => e.Name == "load_weights");
        Assert.Equal(pipeline.Entries.Select(e => e.Stage).Order(), pipeline.Entries.Select(e => e.Stage));
    }

    [Fact]
    public void A_pipeline_file_binds_typed_settings_and_set_overrides_them()
    {
        using var dir = new TempDir();
        var file = Write(dir, """
            transforms:
              - name: touch_nothing
                stage: post_export
                rounds: 3
              - name: load_weights
            """);
        var pipeline = PipelineConfig.Load(file, ["touch_nothing.threshold=0.25", "load_weights.enabled=false"], Registry);

        var steps = pipeline.Entries.Cast<TransformStep>().ToList();
        var settings = Assert.IsType<TouchNothingTransform.Settings>(steps[0].Config);
        Assert.Equal(3, settings.Rounds);
        Assert.Equal(0.25, settings.Threshold);
        Assert.False(steps[1].Config.Enabled);
        Assert.Equal("touch_nothing(enabled=true, rounds=3, threshold=0.25)", steps[0].Identity);
    }

    [Fact]
    public void Snapshot_points_are_not_transforms_and_take_the_stage_of_their_position()
    {
        Assert.False(TransformRegistry.Default.TryGet(SnapshotPoint.EntryName, out _));
        var entries = PipelineConfig.Load().Entries;
        var points = entries.Select((entry, index) => (entry, index)).Where(p => p.entry is SnapshotPoint).ToList();
        Assert.Equal(2, points.Count);
        foreach (var (entry, index) in points)
        {
            var point = (SnapshotPoint)entry;
            Assert.Equal(entries[index - 1].Stage, point.Stage);
            Assert.Equal(entries.Take(index).OfType<TransformStep>().Last().Name, point.After);
            Assert.True(point.Enabled);
        }
    }

    [Fact]
    public void A_compile_runs_no_snapshot_point_as_a_transform()
    {
        using var checkpoint = Kiln.Checkpoints.Checkpoint.Open(TestPaths.DefaultModel);
        var pipeline = PipelineConfig.Load();
        var seen = new List<int>();
        var graph = Kiln.Compile.ModelCompiler.Export(checkpoint);
        Kiln.Compile.ModelCompiler.Resume(graph, checkpoint, pipeline, 0, atPoint: (index, _) => seen.Add(index));
        Assert.Equal(pipeline.Entries.OfType<TransformStep>().Select(s => s.Name), graph.History.Select(h => h.Name));
        Assert.Equal(pipeline.Entries.Select((e, i) => (e, i)).Where(p => p.e is SnapshotPoint).Select(p => p.i), seen);
    }

    [Fact]
    public void A_snapshot_point_is_switched_by_its_enabled_setting_and_by_overrides()
    {
        using var dir = new TempDir();
        var file = Write(dir, """
            transforms:
              - name: pipeline_cache
                enabled: false
              - name: touch_nothing
              - name: pipeline_cache
            """);
        var points = PipelineConfig.Load(file, [], Registry).Entries.OfType<SnapshotPoint>().ToList();
        Assert.Equal([(Stage.Factory, "export", false), (Stage.PostExport, "touch_nothing", true)], points.Select(p => (p.Stage, p.After, p.Enabled)));
        var overridden = PipelineConfig.Load(file, ["pipeline_cache.enabled=false"], Registry).Entries.OfType<SnapshotPoint>();
        Assert.All(overridden, p => Assert.False(p.Enabled));
    }

    [Theory]
    [InlineData("transforms:\n  - name: no_such_transform\n", "line 2", "unknown transform 'no_such_transform'")]
    [InlineData("transforms:\n  - name: touch_nothing\n    speed: 3\n", "touch_nothing.speed", "unknown setting")]
    [InlineData("transforms:\n  - name: touch_nothing\n    rounds: many\n", "touch_nothing.rounds", "'many' is not a valid number")]
    [InlineData("transforms:\n  - name: load_weights\n  - name: touch_nothing\n", "touch_nothing (stage post_export) comes after load_weights", "stages run in the order")]
    [InlineData("transforms:\n  - name: touch_nothing\n    stage: compile\n", "touch_nothing.stage", "belongs to stage post_export")]
    [InlineData("transforms:\n  - name: pipeline_cache\n    rounds: 3\n", "pipeline_cache.rounds", "unknown setting (settings of pipeline_cache: enabled)")]
    [InlineData("transforms:\n  - name: pipeline_cache\n    enabled: sometimes\n", "pipeline_cache.enabled", "is not a valid boolean")]
    [InlineData("transforms:\n  - rounds: 2\n", "name", "missing")]
    [InlineData("steps:\n  - name: touch_nothing\n", "steps", "unknown key")]
    [InlineData("transforms: [ name: x\n", "malformed YAML", "line")]
    public void Bad_pipeline_files_are_errors_naming_file_and_field(string yaml, string mention1, string mention2)
    {
        using var dir = new TempDir();
        var file = Write(dir, yaml);
        var error = Assert.Throws<KilnException>(() => PipelineConfig.Load(file, [], Registry));
        Assert.StartsWith(file, error.Message);
        Assert.Contains(mention1, error.Message);
        Assert.Contains(mention2, error.Message);
    }

    [Theory]
    [InlineData("touch_nothing", "override: 'touch_nothing' is not NAME.KEY=VALUE")]
    [InlineData("nothing_here.enabled=false", "override: nothing_here: unknown transform")]
    [InlineData("break_residual.enabled=false", "override: break_residual: the transform is not in the pipeline")]
    [InlineData("pipeline_cache.enabled=false", "override: pipeline_cache: the pipeline has no snapshot point")]
    public void Bad_set_overrides_are_errors(string set, string message)
    {
        using var dir = new TempDir();
        var file = Write(dir, "transforms:\n  - name: touch_nothing\n");
        Assert.Equal(message, Assert.Throws<KilnException>(() => PipelineConfig.Load(file, [set], Registry)).Message);
    }

    [Fact]
    public void Missing_pipeline_file_is_an_error_naming_it()
    {
        var error = Assert.Throws<KilnException>(() => PipelineConfig.Load("/nonexistent/pipeline.yaml", [], Registry));
        Assert.StartsWith("/nonexistent/pipeline.yaml: ", error.Message);
    }

    private static string Write(TempDir dir, string yaml)
    {
        var path = dir.File("pipeline.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }
}
