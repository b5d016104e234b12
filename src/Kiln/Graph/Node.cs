namespace Kiln.Graph;

/// <summary>One operation: a registered op name, typed attributes, input values and output values.</summary>
public sealed class Node(string op, IReadOnlyList<Value> inputs, IReadOnlyList<Value> outputs, IReadOnlyDictionary<string, AttributeValue> attributes)
{
    public string Op { get; } = op;

    /// <summary>Inputs in order; rewritable by transforms.</summary>
    public List<Value> Inputs { get; } = [.. inputs];

    public IReadOnlyList<Value> Outputs { get; } = outputs;

    /// <summary>Attributes sorted by name, so printing and hashing are deterministic.</summary>
    public SortedDictionary<string, AttributeValue> Attributes { get; } = new(attributes.ToDictionary(), StringComparer.Ordinal);

    public Value Output => Outputs.Count == 1 ? Outputs[0] : throw new GraphException($"{Op} has {Outputs.Count} outputs");

    public long Int(string name) => Attributes.TryGetValue(name, out var a) && a is IntAttribute i ? i.Value : throw Missing(name, "int");

    public double Float(string name) => Attributes.TryGetValue(name, out var a) && a is FloatAttribute f ? f.Value : throw Missing(name, "float");

    public string String(string name) => Attributes.TryGetValue(name, out var a) && a is StringAttribute s ? s.Value : throw Missing(name, "string");

    public long[] Ints(string name) => Attributes.TryGetValue(name, out var a) && a is IntsAttribute l ? l.Value : throw Missing(name, "ints");

    private GraphException Missing(string name, string kind) => new($"{Op}: attribute '{name}' ({kind}) is missing");

    public override string ToString() => $"{string.Join(", ", Outputs)} = {Op}({string.Join(", ", Inputs)})";
}
