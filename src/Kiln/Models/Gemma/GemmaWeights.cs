using Kiln.Weights;

namespace Kiln.Models.Gemma;

/// <summary>
/// Every tensor of a Gemma checkpoint, declared once from the config under its Hugging Face name: the
/// trace reads these weights and <c>kiln testmodel</c> writes these tensors.
/// </summary>
public sealed class GemmaWeights
{
    public GemmaWeights(GemmaConfig c)
    {
        Embedding = Layout.Stored("model.embed_tokens.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
        Layers = [.. Enumerable.Range(0, c.Layers).Select(layer => new GemmaLayerWeights(Layout, c, $"model.layers.{layer}"))];
        Norm = NormGain(Layout, "model.norm.weight", c.HiddenSize);
        Output = c.TieWordEmbeddings ? Embedding : Layout.Stored("lm_head.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
    }

    public WeightLayout Layout { get; } = new();

    /// <summary>[vocab, hidden]: one row per token.</summary>
    public ModelWeight Embedding { get; }

    public IReadOnlyList<GemmaLayerWeights> Layers { get; }

    /// <summary>The final RMSNorm's gain, 1 + w.</summary>
    public ModelWeight Norm { get; }

    /// <summary>The output layer [vocab, hidden]: the embedding itself when tie_word_embeddings is set (Gemma's default).</summary>
    public ModelWeight Output { get; }

    /// <summary>
    /// A GemmaRMSNorm gain. The checkpoint stores w (zero-centred; transformers initializes it to zeros) and
    /// the norm scales by 1.0 + w.float(): the weight the model reads is that sum, made in float32 by the load
    /// recipe, so the trace multiplies by an ordinary gain and the norm fuses like any other.
    /// </summary>
    public static ModelWeight NormGain(WeightLayout layout, string name, long size)
    {
        layout.Tensor(name, TensorInit.AroundZero, size);
        return layout.Weight(name, LoadRecipe.FromSource(name).Then(new OffsetStep(1.0)));
    }
}
