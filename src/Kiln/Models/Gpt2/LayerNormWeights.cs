namespace Kiln.Models.Gpt2;

/// <summary>The gain and bias [hidden] of a LayerNorm (PyTorch's nn.LayerNorm), stored as NAME.weight and NAME.bias.</summary>
public sealed record LayerNormWeights(ModelWeight Weight, ModelWeight Bias)
{
    public static LayerNormWeights Declare(WeightLayout layout, string name, long size) => new(
        layout.Stored(name + ".weight", TensorInit.AroundOne, size),
        layout.Stored(name + ".bias", TensorInit.AroundZero, size));
}
