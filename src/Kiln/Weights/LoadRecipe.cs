using System.Text.Json.Serialization;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// Data-only description of how a graph parameter is made from checkpoint tensors. The pipeline
/// never reads weight values: it appends steps here, and the weight loader applies them once.
/// Semantics: the working list starts as the <see cref="Sources"/> tensors in order; <see cref="ConcatStep"/>
/// joins the whole list into one tensor; every other step applies to each tensor of the list.
/// After the last step exactly one tensor must remain.
/// </summary>
public sealed record LoadRecipe(IReadOnlyList<string> Sources, IReadOnlyList<RecipeStep> Steps)
{
    /// <summary>Bumped whenever a step's meaning or JSON form changes (3: deinterleave_rows and dequantize; 4: offset; 5: nbits_layout; 6: split_columns).</summary>
    public const int SchemaVersion = 6;

    public static LoadRecipe FromSource(string name) => new([name], []);

    public LoadRecipe Then(RecipeStep step) => this with { Steps = [.. Steps, step] };

    /// <summary>Readable one-line form, e.g. <c>source(a.weight) |> cast(f32)</c>.</summary>
    public override string ToString() =>
        string.Join(" |> ", Steps.Select(s => s.ToString()).Prepend($"source({string.Join(", ", Sources)})"));
}

[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(TransposeStep), "transpose")]
[JsonDerivedType(typeof(SliceStep), "slice")]
[JsonDerivedType(typeof(SliceEachStep), "slice_each")]
[JsonDerivedType(typeof(ConcatStep), "concat")]
[JsonDerivedType(typeof(CastStep), "cast")]
[JsonDerivedType(typeof(QuantizeStep), "quantize")]
[JsonDerivedType(typeof(DeinterleaveRowsStep), "deinterleave_rows")]
[JsonDerivedType(typeof(DequantizeStep), "dequantize")]
[JsonDerivedType(typeof(OffsetStep), "offset")]
[JsonDerivedType(typeof(NBitsLayoutStep), "nbits_layout")]
[JsonDerivedType(typeof(SplitColumnsStep), "split_columns")]
public abstract record RecipeStep;

/// <summary>Swaps the two dimensions of a 2-D tensor.</summary>
public sealed record TransposeStep : RecipeStep
{
    public override string ToString() => "transpose()";
}

/// <summary>Keeps <see cref="Length"/> entries of dimension <see cref="Dim"/> starting at <see cref="Start"/>.</summary>
public sealed record SliceStep(int Dim, long Start, long Length) : RecipeStep
{
    public override string ToString() => $"slice(dim={Dim}, start={Start}, length={Length})";
}

/// <summary>
/// Slices the i-th tensor of the working list to <see cref="Lengths"/>[i] entries of dimension <see cref="Dim"/>
/// from <see cref="Starts"/>[i]: each rank's share of projections fused after sharding (q, k and v
/// keep different heads).
/// </summary>
public sealed record SliceEachStep(int Dim, long[] Starts, long[] Lengths) : RecipeStep
{
    public override string ToString() => $"slice_each(dim={Dim}, starts=[{string.Join(", ", Starts)}], lengths=[{string.Join(", ", Lengths)}])";
}

/// <summary>Concatenates every tensor of the working list along <see cref="Dim"/>.</summary>
public sealed record ConcatStep(int Dim) : RecipeStep
{
    public override string ToString() => $"concat(dim={Dim})";
}

/// <summary>Converts elements to <see cref="To"/> (exact for bf16/f16 to f32).</summary>
public sealed record CastStep(DType To) : RecipeStep
{
    public override string ToString() => $"cast({To.Name()})";
}
