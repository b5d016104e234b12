namespace Kiln.Weights;

/// <summary>
/// Within each group of <see cref="Group"/> rows (dimension 0), puts the even rows first and the odd rows
/// after them: rows 0, 2, 4, ..., then 1, 3, 5, .... This undoes llama.cpp's row order for the q and k
/// projections of a GGUF file: its rotary embedding pairs channels 2i and 2i + 1 of a head, Hugging Face's
/// (and Kiln's) pairs i and i + d/2, so its converter stores head row i + d/2 right after row i
/// (convert_hf_to_gguf.py's permute). With <see cref="Group"/> the head size d, the step restores the
/// Hugging Face order exactly. It moves whole rows, so it works as well on rows of quantized blocks.
/// <see cref="Only"/>, when set, names the tensors of the working list it applies to (the q and k of a
/// fused q/k/v recipe); otherwise it applies to each.
/// </summary>
public sealed record DeinterleaveRowsStep(long Group, int[]? Only = null) : RecipeStep
{
    public override string ToString() =>
        Only is null ? $"deinterleave_rows(group={Group})" : $"deinterleave_rows(group={Group}, only=[{string.Join(", ", Only)}])";

    /// <summary>Whether the step applies to tensor <paramref name="index"/> of the working list.</summary>
    public bool AppliesTo(int index) => Only is null || Only.Contains(index);
}
