namespace Kiln.Weights;

/// <summary>
/// Recipes over tensors a checkpoint stores in quantized blocks (GGUF Q8_0 and Q4_0). Steps that move
/// whole rows of dimension 0 (slices and concatenations of rows, <see cref="DeinterleaveRowsStep"/>) work
/// the same on rows of blocks as on rows of floats, so a recipe keeps the blocks through them and
/// dequantizes after them; quantize_weights then takes the dequantize out again where a kernel reads
/// the blocks, and the parameter is the stored bytes themselves, never a float copy.
/// </summary>
public static class StoredBlocks
{
    /// <summary>Whether <paramref name="step"/> only moves whole rows of dimension 0.</summary>
    public static bool MovesWholeRows(RecipeStep step) =>
        step is SliceStep { Dim: 0 } or SliceEachStep { Dim: 0 } or ConcatStep { Dim: 0 } or DeinterleaveRowsStep;

    /// <summary>
    /// <paramref name="recipe"/> over sources stored in <paramref name="scheme"/>'s blocks, made to give floats:
    /// a dequantize step after its leading steps that move whole rows.
    /// </summary>
    public static LoadRecipe Dequantized(LoadRecipe recipe, QuantScheme scheme)
    {
        var at = recipe.Steps.TakeWhile(MovesWholeRows).Count();
        return recipe with { Steps = [.. recipe.Steps.Take(at), new DequantizeStep(scheme), .. recipe.Steps.Skip(at)] };
    }

    /// <summary>
    /// The blocks a recipe reads as stored: its dequantize step's scheme and the recipe without that step, when
    /// only steps that move whole rows follow it (the recipe then yields the stored blocks' rows); null otherwise.
    /// </summary>
    public static (LoadRecipe Recipe, QuantScheme Scheme)? Packed(LoadRecipe recipe)
    {
        var at = recipe.Steps.ToList().FindIndex(s => s is DequantizeStep);
        if (at < 0 || !recipe.Steps.Skip(at + 1).All(MovesWholeRows)) return null;
        return (recipe with { Steps = [.. recipe.Steps.Where((_, i) => i != at)] }, ((DequantizeStep)recipe.Steps[at]).Scheme);
    }
}
