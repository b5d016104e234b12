using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms;

public sealed class SelectSessionOptionsTests
{
    [Fact]
    public void Small_models_are_prepacked_and_large_ones_are_not()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);

        var small = ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph;
        // 1,040,128 bytes of weights against a limit just below them.
        var large = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: ["select_session_options.prepacking_max_weight_bytes=1040127"])).Graph;

        Assert.Equal("true", small.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("false", large.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("select_session_options", small.History.Last(h => h.Name != "pipeline_cache").Name);
    }

    [Fact]
    public void The_session_follows_the_graph_choice_unless_the_user_overrides_it()
    {
        var noPrepacking = PipelineConfig.Load(sets: ["select_session_options.prepacking_max_weight_bytes=0"]);

        using var followed = LoadedModel.Load(TestPaths.DefaultModel, pipeline: noPrepacking);
        using var overridden = LoadedModel.Load(TestPaths.DefaultModel, new SessionSettings(Prepacking: true), noPrepacking);
        using var byDefault = LoadedModel.Load(TestPaths.DefaultModel);

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
