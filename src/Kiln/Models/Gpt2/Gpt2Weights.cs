namespace Kiln.Models.Gpt2;

/// <summary>
/// Every tensor of a GPT-2 checkpoint, declared once from the config under its Hugging Face name: the
/// trace reads these weights and <c>kiln testmodel</c> writes these tensors.
/// </summary>
public sealed class Gpt2Weights
{
    public Gpt2Weights(Gpt2Config c)
    {
        TokenEmbedding = Layout.Stored("transformer.wte.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
        PositionEmbedding = Layout.Stored("transformer.wpe.weight", TensorInit.AroundZero, c.MaxPositions, c.HiddenSize);
        Layers = [.. Enumerable.Range(0, c.Layers).Select(layer => new Gpt2LayerWeights(Layout, c, $"transformer.h.{layer}"))];
        FinalNorm = LayerNormWeights.Declare(Layout, "transformer.ln_f", c.HiddenSize);
        Output = c.TieWordEmbeddings ? TokenEmbedding : Layout.Stored("lm_head.weight", TensorInit.AroundZero, c.VocabSize, c.HiddenSize);
    }

    public WeightLayout Layout { get; } = new();

    /// <summary>wte [vocab, hidden]: one row per token.</summary>
    public ModelWeight TokenEmbedding { get; }

    /// <summary>wpe [positions, hidden]: one learned row per position.</summary>
    public ModelWeight PositionEmbedding { get; }

    public IReadOnlyList<Gpt2LayerWeights> Layers { get; }

    public LayerNormWeights FinalNorm { get; }

    /// <summary>The output layer [vocab, hidden]: wte itself unless tie_word_embeddings is false.</summary>
    public ModelWeight Output { get; }
}
