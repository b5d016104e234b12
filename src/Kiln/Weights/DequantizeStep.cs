namespace Kiln.Weights;

/// <summary>
/// Unpacks weights stored in <see cref="Scheme"/>'s blocks (u8 [..., blocks · block bytes]) into f32
/// [..., blocks · 32]: the way to a float parameter from a tensor a GGUF file stores in Q8_0 or Q4_0
/// blocks, for the readers that have no kernel over the blocks (an embedding lookup, or a product that
/// quantize_weights leaves in float). A linear weight keeps its blocks instead: quantize_weights removes
/// this step and multiplies by the blocks as stored (<see cref="StoredBlocks"/>).
/// </summary>
public sealed record DequantizeStep(QuantScheme Scheme) : RecipeStep
{
    public override string ToString() => $"dequantize({Scheme.Name()})";
}
