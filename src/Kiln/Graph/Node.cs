namespace Kiln.Graph;

/// <summary>
/// One operation: a registered op name, typed attributes, input values and output values. Nodes are
/// made by <see cref="ModelGraph.CreateNode"/> and placed by the graph's insert methods. Inputs change
/// only through <see cref="ReplaceInput"/> and <see cref="ModelGraph.ReplaceUses"/>, which keep the
/// values' users right.
/// </summary>
public sealed class Node
{
    private readonly Value[] _inputs;

    internal Node(ModelGraph graph, string op, IReadOnlyList<Value> inputs, IReadOnlyList<Value> outputs, IReadOnlyDictionary<string, AttributeValue> attributes)
    {
        Graph = graph;
        Op = op;
        _inputs = [.. inputs];
        Inputs = Array.AsReadOnly(_inputs);
        Outputs = outputs;
        Attributes = new(StringComparer.Ordinal);
        foreach (var (name, value) in attributes) Attributes.Add(name, value);
        foreach (var output in outputs) output.Producer = this;
    }

    /// <summary>The graph that made this node; it can be placed only there.</summary>
    internal ModelGraph Graph { get; }

    public string Op { get; }

    public IReadOnlyList<Value> Inputs { get; }

    public IReadOnlyList<Value> Outputs { get; }

    /// <summary>Attributes sorted by name, so printing and hashing are deterministic.</summary>
    public SortedDictionary<string, AttributeValue> Attributes { get; }

    /// <summary>Whether the node is in its graph's node list (placed, and not erased since).</summary>
    public bool IsInGraph { get; internal set; }

    /// <summary>Erased (or replaced) once; a node is never placed again, since its output names were given up.</summary>
    internal bool IsErased { get; set; }

    public Value Output => Outputs.Count == 1 ? Outputs[0] : throw new GraphException($"{Op} has {Outputs.Count} outputs");

    /// <summary>Makes input <paramref name="index"/> read <paramref name="value"/>, a value of the graph of the same type.</summary>
    public void ReplaceInput(int index, Value value) => Graph.ReplaceInput(this, index, value);

    internal void SetInput(int index, Value value) => _inputs[index] = value;

    public long Int(string name) => Attributes.TryGetValue(name, out var a) && a is IntAttribute i ? i.Value : throw Missing(name, "int");

    public double Float(string name) => Attributes.TryGetValue(name, out var a) && a is FloatAttribute f ? f.Value : throw Missing(name, "float");

    public string String(string name) => Attributes.TryGetValue(name, out var a) && a is StringAttribute s ? s.Value : throw Missing(name, "string");

    public long[] Ints(string name) => Attributes.TryGetValue(name, out var a) && a is IntsAttribute l ? l.Value : throw Missing(name, "ints");

    private GraphException Missing(string name, string kind) => new($"{Op}: attribute '{name}' ({kind}) is missing");

    public override string ToString() => $"{string.Join(", ", Outputs)} = {Op}({string.Join(", ", Inputs)})";
}
