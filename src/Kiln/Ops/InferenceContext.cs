using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>What an op's type inference sees: its input types and attributes (defaults filled in).</summary>
public sealed class InferenceContext(string op, IReadOnlyList<TensorType> inputs, IReadOnlyDictionary<string, AttributeValue> attributes)
{
    public string Op { get; } = op;

    public IReadOnlyList<TensorType> Inputs { get; } = inputs;

    public TensorType this[int index] => Inputs[index];

    public long Int(string name) => ((IntAttribute)attributes[name]).Value;

    public double Float(string name) => ((FloatAttribute)attributes[name]).Value;

    public string String(string name) => ((StringAttribute)attributes[name]).Value;

    public long[] Ints(string name) => ((IntsAttribute)attributes[name]).Value;

    public DType DTypeAttribute(string name) =>
        DTypeExtensions.TryParse(String(name), out var type) ? type : throw Error($"unknown dtype '{String(name)}'");

    public GraphException Error(string problem) =>
        new($"{Op}({string.Join(", ", Inputs)}): {problem}");

    /// <summary>Fails unless every input has the same dtype; returns it.</summary>
    public DType SameDType()
    {
        var first = Inputs[0].DType;
        if (Inputs.Any(i => i.DType != first)) throw Error("inputs have different dtypes");
        return first;
    }
}
