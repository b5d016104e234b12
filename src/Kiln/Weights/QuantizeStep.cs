namespace Kiln.Weights;

/// <summary>
/// Packs a 2-D float weight [n, k] (f32, f16 or bf16) into <see cref="Scheme"/>'s blocks: u8
/// [n, scheme.RowBytes(k)], each row its blocks in order (<see cref="BlockQuantizer"/>).
/// </summary>
public sealed record QuantizeStep(QuantScheme Scheme) : RecipeStep
{
    public override string ToString() => $"quantize({Scheme.Name()})";
}
