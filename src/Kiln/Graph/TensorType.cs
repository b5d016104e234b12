namespace Kiln.Graph;

/// <summary>The element type and shape of a value.</summary>
public sealed record TensorType(DType DType, Shape Shape)
{
    public override string ToString() => $"{DType.Name()}{Shape}";
}
