namespace Kiln.Graph;

/// <summary>Where a value comes from.</summary>
public enum ValueKind { Input, Parameter, Buffer, NodeOutput }

/// <summary>
/// A named tensor in a graph: a graph input, a parameter (weights, bound late), a buffer (small tensor
/// computed at export) or the output of exactly one node.
/// </summary>
public sealed class Value(string name, TensorType type, ValueKind kind)
{
    public string Name { get; } = name;

    public TensorType Type { get; set; } = type;

    public ValueKind Kind { get; } = kind;

    public DType DType => Type.DType;

    public Shape Shape => Type.Shape;

    public override string ToString() => Name;
}
