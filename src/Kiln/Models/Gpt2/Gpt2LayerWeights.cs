using Kiln.Weights;

namespace Kiln.Models.Gpt2;

/// <summary>
/// The weights of one GPT-2 block. Its linear layers are transformers' Conv1D, which stores the weight
/// [in, out] (x @ W + b): each weight the model reads is the stored tensor transposed to nn.Linear's
/// [out, in] by its load recipe, and c_attn's columns [q | k | v] are sliced into three projections,
/// so that the compiler sees the same q, k and v linears as in any other family.
/// </summary>
public sealed class Gpt2LayerWeights
{
    public Gpt2LayerWeights(WeightLayout layout, Gpt2Config c, string prefix)
    {
        long hidden = c.HiddenSize, inner = c.IntermediateSize;
        Norm1 = LayerNormWeights.Declare(layout, $"{prefix}.ln_1", hidden);
        var qkvWeight = layout.Tensor($"{prefix}.attn.c_attn.weight", TensorInit.AroundZero, hidden, 3 * hidden);
        var qkvBias = layout.Tensor($"{prefix}.attn.c_attn.bias", TensorInit.AroundZero, 3 * hidden);
        // Named q_proj, k_proj, v_proj like the other families' projections (fuse_qkv_projections joins them by name).
        LinearWeights Part(string name, int index) => new(
            layout.Weight($"{prefix}.attn.{name}.weight", LoadRecipe.FromSource(qkvWeight.Name).Then(new SliceStep(1, index * hidden, hidden)).Then(new TransposeStep())),
            layout.Weight($"{prefix}.attn.{name}.bias", LoadRecipe.FromSource(qkvBias.Name).Then(new SliceStep(0, index * hidden, hidden))));
        Q = Part("q_proj", 0);
        K = Part("k_proj", 1);
        V = Part("v_proj", 2);
        Projection = Conv1D(layout, $"{prefix}.attn.c_proj", hidden, hidden);
        Norm2 = LayerNormWeights.Declare(layout, $"{prefix}.ln_2", hidden);
        Up = Conv1D(layout, $"{prefix}.mlp.c_fc", hidden, inner);
        Down = Conv1D(layout, $"{prefix}.mlp.c_proj", inner, hidden);
    }

    public LayerNormWeights Norm1 { get; }
    public LinearWeights Q { get; }
    public LinearWeights K { get; }
    public LinearWeights V { get; }

    /// <summary>attn.c_proj: the attention's output projection.</summary>
    public LinearWeights Projection { get; }

    public LayerNormWeights Norm2 { get; }

    /// <summary>mlp.c_fc [hidden -> inner].</summary>
    public LinearWeights Up { get; }

    /// <summary>mlp.c_proj [inner -> hidden].</summary>
    public LinearWeights Down { get; }

    // A Conv1D layer: NAME.weight stored [in, out], read transposed; NAME.bias [out].
    private static LinearWeights Conv1D(WeightLayout layout, string name, long inFeatures, long outFeatures)
    {
        var weight = layout.Tensor(name + ".weight", TensorInit.AroundZero, inFeatures, outFeatures);
        return new LinearWeights(
            layout.Weight(name + ".weight", LoadRecipe.FromSource(weight.Name).Then(new TransposeStep())),
            layout.Stored(name + ".bias", TensorInit.AroundZero, outFeatures));
    }
}
