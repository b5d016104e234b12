using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph.Json;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms;

public sealed class PipelineTests
{
    [Fact]
    public void History_records_each_transform_and_travels_with_the_graph_json()
    {
        using var dir = new TempDir();
        var file = dir.File("pipeline.yaml");
        File.WriteAllText(file, "transforms:\n  - name: touch_nothing\n    rounds: 4\n  - name: load_weights\n    enabled: false\n");
        using var checkpoint = Checkpoint.Open(TestPaths.Oracle("llama_gqa"));

        var result = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(file, [], TestRegistries.WithTestTransforms));

        var history = result.Graph.History;
        Assert.Equal(["touch_nothing", "load_weights"], history.Select(h => h.Name));
        Assert.Equal((4, false), (history[0].Matches, history[0].Skipped));
        Assert.Equal((0, true), (history[1].Matches, history[1].Skipped));
        Assert.All(history, h => Assert.Equal(result.Graph.Nodes.Count, h.NodesAfter));
        Assert.All(history, h => Assert.True(h.ShapesValid));

        var restored = GraphSerializer.FromJson(GraphSerializer.ToJson(result.Graph), OpRegistry.Default);
        Assert.Equal(history, restored.History);
    }

    [Fact]
    public void Verification_names_a_transform_that_changes_the_output()
    {
        using var dir = new TempDir();
        var file = dir.File("pipeline.yaml");
        File.WriteAllText(file, "transforms:\n  - name: touch_nothing\n  - name: break_residual\n  - name: load_weights\n");
        var model = TestPaths.Oracle("llama_gqa");
        using var checkpoint = Checkpoint.Open(model);
        var verifier = new PipelineVerifier(model, ModelCompiler.Export(checkpoint));

        var error = Assert.Throws<VerificationException>(() =>
            ModelCompiler.Compile(checkpoint, PipelineConfig.Load(file, [], TestRegistries.WithTestTransforms), (entry, _, graph) => verifier.Check(entry.Name, graph)));

        Assert.Equal("break_residual", error.Step.Transform);
        Assert.Contains("transform break_residual changed the logits", error.Message);
        Assert.Equal(0, verifier.Steps[0].MaxAbsDifference);
    }
}
