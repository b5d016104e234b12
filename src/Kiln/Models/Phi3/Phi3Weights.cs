namespace Kiln.Models.Phi3;

/// <summary>
/// Every tensor of a Phi-3 checkpoint, declared once from the config under its Hugging Face name: the
/// trace reads these weights and <c>kiln testmodel</c> writes these tensors.
/// </summary>
public sealed class Phi3Weights
{
    public Phi3Weights(Phi3Config c)
    {
        Embedding = Layout.Stored("model.embed_tokens.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
        Layers = [.. Enumerable.Range(0, c.Layers).Select(layer => new Phi3LayerWeights(Layout, c, $"model.layers.{layer}"))];
        Norm = Layout.Stored("model.norm.weight", TensorInit.AroundOne, c.HiddenSize);
        Output = c.TieWordEmbeddings ? Embedding : Layout.Stored("lm_head.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
    }

    public WeightLayout Layout { get; } = new();

    /// <summary>[vocab, hidden]: one row per token.</summary>
    public ModelWeight Embedding { get; }

    public IReadOnlyList<Phi3LayerWeights> Layers { get; }

    /// <summary>The final RMSNorm's gain.</summary>
    public ModelWeight Norm { get; }

    /// <summary>The output layer [vocab, hidden]: the embedding itself when tie_word_embeddings is set.</summary>
    public ModelWeight Output { get; }
}
