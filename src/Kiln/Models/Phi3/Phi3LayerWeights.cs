using Kiln.Weights;

namespace Kiln.Models.Phi3;

/// <summary>
/// The weights of one decoder layer. The checkpoint stores q, k and v as the rows [q | k | v] of one
/// qkv_proj and the MLP's gate and up as the rows [gate | up] of one gate_up_proj; each projection is
/// declared as its rows (a slice of whole leading rows, which loads as a view of the file), so the trace
/// reads q, k, v, gate and up like any other family's and the post-load sibling fusion joins them back
/// into one view of the stored tensor.
/// </summary>
public sealed class Phi3LayerWeights
{
    public Phi3LayerWeights(WeightLayout layout, Phi3Config c, string prefix)
    {
        long hidden = c.HiddenSize, q = c.Heads * c.HeadDim, kv = c.KvHeads * c.HeadDim, intermediate = c.IntermediateSize;
        InputNorm = layout.Stored($"{prefix}.input_layernorm.weight", TensorInit.AroundOne, hidden);
        var qkv = layout.Tensor($"{prefix}.self_attn.qkv_proj.weight", TensorInit.AroundZero, q + 2 * kv, hidden);
        Q = Rows(layout, qkv, $"{prefix}.self_attn.q_proj.weight", 0, q);
        K = Rows(layout, qkv, $"{prefix}.self_attn.k_proj.weight", q, kv);
        V = Rows(layout, qkv, $"{prefix}.self_attn.v_proj.weight", q + kv, kv);
        O = layout.Linear($"{prefix}.self_attn.o_proj", hidden, q, bias: false);
        PostAttentionNorm = layout.Stored($"{prefix}.post_attention_layernorm.weight", TensorInit.AroundOne, hidden);
        var gateUp = layout.Tensor($"{prefix}.mlp.gate_up_proj.weight", TensorInit.AroundZero, 2 * intermediate, hidden);
        Gate = Rows(layout, gateUp, $"{prefix}.mlp.gate_proj.weight", 0, intermediate);
        Up = Rows(layout, gateUp, $"{prefix}.mlp.up_proj.weight", intermediate, intermediate);
        Down = layout.Linear($"{prefix}.mlp.down_proj", hidden, intermediate, bias: false);
    }

    public ModelWeight InputNorm { get; }
    public LinearWeights Q { get; }
    public LinearWeights K { get; }
    public LinearWeights V { get; }
    public LinearWeights O { get; }
    public ModelWeight PostAttentionNorm { get; }
    public LinearWeights Gate { get; }
    public LinearWeights Up { get; }
    public LinearWeights Down { get; }

    // Rows [start, start + count) of a fused stored projection, as the weight of its own linear (no bias in Phi-3).
    private static LinearWeights Rows(WeightLayout layout, CheckpointTensor fused, string name, long start, long count) =>
        new(layout.Weight(name, LoadRecipe.FromSource(fused.Name).Then(new SliceStep(0, start, count))), null);
}
