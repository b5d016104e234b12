namespace Kiln.Models.Gemma;

/// <summary>The weights of one decoder layer, in the order the checkpoint lists them.</summary>
public sealed class GemmaLayerWeights
{
    public GemmaLayerWeights(WeightLayout layout, GemmaConfig c, string prefix)
    {
        long hidden = c.HiddenSize, q = c.Heads * c.HeadDim, kv = c.KvHeads * c.HeadDim, intermediate = c.IntermediateSize;
        InputNorm = GemmaWeights.NormGain(layout, $"{prefix}.input_layernorm.weight", hidden);
        Q = layout.Linear($"{prefix}.self_attn.q_proj", q, hidden, c.AttentionBias);
        K = layout.Linear($"{prefix}.self_attn.k_proj", kv, hidden, c.AttentionBias);
        V = layout.Linear($"{prefix}.self_attn.v_proj", kv, hidden, c.AttentionBias);
        O = layout.Linear($"{prefix}.self_attn.o_proj", hidden, q, c.AttentionBias);
        PostAttentionNorm = GemmaWeights.NormGain(layout, $"{prefix}.post_attention_layernorm.weight", hidden);
        Gate = layout.Linear($"{prefix}.mlp.gate_proj", intermediate, hidden, bias: false);
        Up = layout.Linear($"{prefix}.mlp.up_proj", intermediate, hidden, bias: false);
        Down = layout.Linear($"{prefix}.mlp.down_proj", hidden, intermediate, bias: false);
    }

    /// <summary>1 + w of input_layernorm (see <see cref="GemmaWeights.NormGain"/>).</summary>
    public ModelWeight InputNorm { get; }
    public LinearWeights Q { get; }
    public LinearWeights K { get; }
    public LinearWeights V { get; }
    public LinearWeights O { get; }

    /// <summary>1 + w of post_attention_layernorm.</summary>
    public ModelWeight PostAttentionNorm { get; }
    public LinearWeights Gate { get; }
    public LinearWeights Up { get; }
    public LinearWeights Down { get; }
}
