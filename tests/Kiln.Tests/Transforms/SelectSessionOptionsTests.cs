using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms;

public sealed class SelectSessionOptionsTests
{
    private const string OrtMatMul = "use_kiln_linear.enabled=false";

    [Fact]
    public void Small_models_on_ort_matmul_are_prepacked_and_large_ones_are_not()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);

        var small = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: [OrtMatMul])).Graph;
        // The projections and LM head (the default model's weights less its norms) against a limit just below them.
        var packable = small.Parameters.Where(p => !p.Name.Contains("norm", StringComparison.Ordinal)).Sum(p => p.Value.Shape.ToSizes().Aggregate(1L, (a, b) => a * b) * 4);
        var large = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: [OrtMatMul, $"select_session_options.prepacking_max_weight_bytes={packable - 1}"])).Graph;
        var limitMet = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: [OrtMatMul, $"select_session_options.prepacking_max_weight_bytes={packable}"])).Graph;

        Assert.Equal("true", small.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("false", large.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("true", limitMet.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("select_session_options", small.History[^1].Name);
    }

    [Fact]
    public void Nothing_is_prepacked_when_every_product_runs_on_the_kiln_kernel()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var graph = ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph;
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "linear" or "matmul");
        Assert.Equal("false", graph.Metadata[SessionSettings.PrepackingMetadataKey]);
    }

    [Fact]
    public void The_session_follows_the_graph_choice_unless_the_user_overrides_it()
    {
        var noPrepacking = PipelineConfig.Load(sets: [OrtMatMul, "select_session_options.prepacking_max_weight_bytes=0"]);

        using var followed = LoadedModel.Load(TestPaths.DefaultModel, pipeline: noPrepacking);
        using var overridden = LoadedModel.Load(TestPaths.DefaultModel, new SessionSettings(Prepacking: true), noPrepacking);
        using var byDefault = LoadedModel.Load(TestPaths.DefaultModel, pipeline: PipelineConfig.Load(sets: [OrtMatMul]));

        Assert.False(followed.Session.Prepacking);
        Assert.True(overridden.Session.Prepacking);
        Assert.True(byDefault.Session.Prepacking);
        Assert.Equal(followed.Forward([1, 5, 9], [0, 1, 2]), overridden.Forward([1, 5, 9], [0, 1, 2]), new ToleranceComparer(1e-5f));
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float value) => 0;
    }
}
