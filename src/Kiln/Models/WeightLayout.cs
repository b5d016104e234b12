using Kiln.Weights;

namespace Kiln.Models;

/// <summary>
/// The tensors of a family's checkpoint and the weights the model reads from them, declared once by
/// the family from its config: the trace reads <see cref="Weights"/>, <c>kiln testmodel</c> writes
/// <see cref="Tensors"/> (in this order), and neither spells a tensor name of its own.
/// </summary>
public sealed class WeightLayout
{
    private readonly List<CheckpointTensor> _tensors = [];
    private readonly Dictionary<string, CheckpointTensor> _tensorsByName = new(StringComparer.Ordinal);
    private readonly List<ModelWeight> _weights = [];

    /// <summary>The checkpoint's tensors, in the order they were declared.</summary>
    public IReadOnlyList<CheckpointTensor> Tensors => _tensors;

    /// <summary>The weights the model reads, each made from <see cref="Tensors"/> by its recipe.</summary>
    public IReadOnlyList<ModelWeight> Weights => _weights;

    /// <summary>Declares a checkpoint tensor that the model reads as it is stored: the weight of the same name and shape.</summary>
    public ModelWeight Stored(string name, TensorInit init, params long[] shape)
    {
        Tensor(name, init, shape);
        return Weight(name, LoadRecipe.FromSource(name));
    }

    /// <summary>A linear layer as transformers stores nn.Linear: <c>NAME.weight</c> [out, in] and, with <paramref name="bias"/>, <c>NAME.bias</c> [out].</summary>
    public LinearWeights Linear(string name, long outFeatures, long inFeatures, bool bias) => new(
        Stored(name + ".weight", TensorInit.AroundZero, outFeatures, inFeatures),
        bias ? Stored(name + ".bias", TensorInit.AroundZero, outFeatures) : null);

    /// <summary>
    /// Declares a checkpoint tensor. One the model does not read as stored (GPT-2's [in, out] Conv1D
    /// weights, its fused c_attn) is declared here, and the weights made from it with <see cref="Weight"/>.
    /// </summary>
    public CheckpointTensor Tensor(string name, TensorInit init, params long[] shape)
    {
        var tensor = new CheckpointTensor(name, shape, init);
        if (!_tensorsByName.TryAdd(name, tensor)) throw new ArgumentException($"checkpoint tensor {name} is declared twice", nameof(name));
        _tensors.Add(tensor);
        return tensor;
    }

    /// <summary>Declares a weight that <paramref name="recipe"/> makes from declared tensors; its shape is what the recipe gives.</summary>
    public ModelWeight Weight(string name, LoadRecipe recipe)
    {
        var sources = recipe.Sources.Select(source => _tensorsByName.TryGetValue(source, out var tensor)
            ? tensor.Shape
            : throw new ArgumentException($"weight {name}: its recipe reads {source}, which is not a declared tensor", nameof(recipe))).ToList();
        var weight = new ModelWeight(name, RecipeShapes.Infer(sources, recipe), recipe);
        _weights.Add(weight);
        return weight;
    }
}
