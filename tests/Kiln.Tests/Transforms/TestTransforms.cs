using Kiln.Graph;
using Kiln.Transforms;
using Kiln.Transforms.WeightLoad;

namespace Kiln.Tests.Transforms;

/// <summary>A transform with a knob, that changes nothing: for pipeline-configuration tests.</summary>
public sealed class TouchNothingTransform : Transform<TouchNothingTransform.Settings>
{
    public sealed record Settings : TransformConfig
    {
        public int Rounds { get; init; } = 1;

        public double Threshold { get; init; } = 0.5;
    }

    public override string Name => "touch_nothing";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, Settings config, TransformContext context) => config.Rounds;
}

/// <summary>
/// A deliberately wrong transform: turns the first residual add of the graph into a subtraction,
/// which keeps every shape valid but changes the model's output.
/// </summary>
public sealed class BreakResidualTransform : Transform<TransformConfig>
{
    public override string Name => "break_residual";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var add = graph.Nodes.First(n => n.Op == "add" && n.Inputs.All(i => i.Shape.Rank == 3));
        var sub = graph.CreateNode("sub", add.Inputs);
        graph.InsertBefore(add, sub);
        graph.ReplaceUses(add.Output, sub.Output);
        graph.EraseNode(add);
        return 1;
    }
}

public static class TestRegistries
{
    public static TransformRegistry WithTestTransforms { get; } =
        new([new TouchNothingTransform(), new BreakResidualTransform(), new LoadWeightsTransform()]);
}
