namespace Kiln.Models.Llama;

/// <summary>The weights of one decoder layer, in the order the checkpoint lists them.</summary>
public sealed class LlamaLayerWeights
{
    public LlamaLayerWeights(WeightLayout layout, LlamaConfig c, string prefix)
    {
        long hidden = c.HiddenSize, q = c.Heads * c.HeadDim, kv = c.KvHeads * c.HeadDim, intermediate = c.IntermediateSize;
        InputNorm = layout.Stored($"{prefix}.input_layernorm.weight", TensorInit.AroundOne, hidden);
        Q = layout.Linear($"{prefix}.self_attn.q_proj", q, hidden, c.AttentionBias);
        K = layout.Linear($"{prefix}.self_attn.k_proj", kv, hidden, c.AttentionBias);
        V = layout.Linear($"{prefix}.self_attn.v_proj", kv, hidden, c.AttentionBias);
        O = layout.Linear($"{prefix}.self_attn.o_proj", hidden, q, c.OutputProjectionBias);
        if (c.QkNorm)
        {
            QNorm = layout.Stored($"{prefix}.self_attn.q_norm.weight", TensorInit.AroundOne, c.HeadDim);
            KNorm = layout.Stored($"{prefix}.self_attn.k_norm.weight", TensorInit.AroundOne, c.HeadDim);
        }
        PostAttentionNorm = layout.Stored($"{prefix}.post_attention_layernorm.weight", TensorInit.AroundOne, hidden);
        Gate = layout.Linear($"{prefix}.mlp.gate_proj", intermediate, hidden, c.MlpBias);
        Up = layout.Linear($"{prefix}.mlp.up_proj", intermediate, hidden, c.MlpBias);
        Down = layout.Linear($"{prefix}.mlp.down_proj", hidden, intermediate, c.MlpBias);
    }

    public ModelWeight InputNorm { get; }
    public LinearWeights Q { get; }
    public LinearWeights K { get; }
    public LinearWeights V { get; }
    public LinearWeights O { get; }

    /// <summary>Qwen3's RMSNorm gains over each head of q and k; null for the others.</summary>
    public ModelWeight? QNorm { get; }
    public ModelWeight? KNorm { get; }

    public ModelWeight PostAttentionNorm { get; }
    public LinearWeights Gate { get; }
    public LinearWeights Up { get; }
    public LinearWeights Down { get; }
}
