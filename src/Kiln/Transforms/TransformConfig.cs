namespace Kiln.Transforms;

/// <summary>
/// Settings of one transform. Every transform has <see cref="Enabled"/>; transforms with knobs derive
/// their own record and add properties, which the pipeline file sets by their snake_case names.
/// </summary>
public record TransformConfig
{
    public bool Enabled { get; init; } = true;
}
