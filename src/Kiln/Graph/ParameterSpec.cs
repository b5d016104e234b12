using Kiln.Weights;

namespace Kiln.Graph;

/// <summary>
/// A weight the graph needs: its value in the graph and how to make it from checkpoint tensors.
/// It holds no data; weights are bound after the pipeline.
/// </summary>
public sealed class ParameterSpec(Value value, LoadRecipe recipe)
{
    public Value Value { get; } = value;

    public string Name => Value.Name;

    public LoadRecipe Recipe { get; set; } = recipe;
}
