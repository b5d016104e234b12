namespace Kiln.Weights;

/// <summary>
/// Adds <see cref="Value"/> to every element, in float32, giving float32 (from f32, f16 or bf16): a gain
/// stored as its difference from one, such as Gemma's RMSNorm weight w, which the model uses as
/// 1.0 + w.float(). Adding in float32 keeps the small w that a 16-bit 1 + w would round away.
/// </summary>
public sealed record OffsetStep(double Value) : RecipeStep
{
    public override string ToString() => $"offset({Value})";
}
