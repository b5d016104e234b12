using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Graph;

/// <summary>
/// The graph IR: inputs, parameters, buffers, a topologically ordered node list and outputs.
/// Node output types are inferred by the op registry as nodes are added.
/// </summary>
public sealed class ModelGraph(OpRegistry registry)
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>
    /// The next numeric suffix for fresh value names. Kept in the JSON form so a graph restored from a
    /// snapshot names the values later transforms create exactly as the original graph would.
    /// </summary>
    internal int NameCounter { get; set; }

    public OpRegistry Registry { get; } = registry;

    public List<Value> Inputs { get; } = [];

    public List<ParameterSpec> Parameters { get; } = [];

    public List<BufferTensor> Buffers { get; } = [];

    public List<Node> Nodes { get; } = [];

    public List<Value> Outputs { get; } = [];

    /// <summary>What each transform of the pipeline did to this graph, in order.</summary>
    public List<Transforms.TransformInfo> History { get; } = [];

    /// <summary>The model the graph computes, as its config.json describes it (vocabulary, context length, sizes); null for a graph built by hand.</summary>
    public ModelFacts? Model { get; set; }

    /// <summary>Notes transforms leave for the runtime (the key/value cache's signature, session choices).</summary>
    public SortedDictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public Value AddInput(string name, DType dtype, Shape shape)
    {
        var value = new Value(Claim(name), new TensorType(dtype, shape), ValueKind.Input);
        Inputs.Add(value);
        return value;
    }

    public ParameterSpec AddParameter(string name, DType dtype, long[] shape, LoadRecipe recipe)
    {
        var spec = new ParameterSpec(new Value(Claim(name), new TensorType(dtype, Shape.Of(shape)), ValueKind.Parameter), recipe);
        Parameters.Add(spec);
        return spec;
    }

    public BufferTensor AddBuffer(string name, DType dtype, long[] shape, byte[] data)
    {
        var expected = shape.Aggregate(1L, (a, b) => a * b) * dtype.ByteSize();
        if (data.Length != expected) throw new GraphException($"buffer {name}: {data.Length} bytes for shape [{string.Join(", ", shape)}] of {dtype.Name()}");
        var buffer = new BufferTensor(new Value(Claim(name), new TensorType(dtype, Shape.Of(shape)), ValueKind.Buffer), data);
        Buffers.Add(buffer);
        return buffer;
    }

    /// <summary>Appends a node; its outputs' types come from the op's shape inference.</summary>
    public Node AddNode(string op, IReadOnlyList<Value> inputs, IReadOnlyDictionary<string, AttributeValue>? attributes = null, string? nameHint = null)
    {
        var node = CreateNode(op, inputs, attributes, nameHint);
        Nodes.Add(node);
        return node;
    }

    /// <summary>
    /// Makes a node with fresh output values without placing it; transforms insert it where they need it.
    /// <paramref name="outputNames"/>, when given, names the outputs exactly (e.g. outputs of the graph's signature).
    /// </summary>
    public Node CreateNode(string op, IReadOnlyList<Value> inputs, IReadOnlyDictionary<string, AttributeValue>? attributes = null,
        string? nameHint = null, IReadOnlyList<string>? outputNames = null)
    {
        var definition = Registry.Get(op);
        var attrs = attributes ?? new Dictionary<string, AttributeValue>();
        var types = definition.InferTypes(inputs.Select(i => i.Type).ToArray(), attrs);
        if (outputNames != null && outputNames.Count != types.Length)
            throw new GraphException($"{op}: {outputNames.Count} output names for {types.Length} outputs");
        var outputs = types.Select((t, i) => new Value(Claim(outputNames?[i] ?? FreshName(nameHint ?? op)), t, ValueKind.NodeOutput)).ToArray();
        return new Node(op, inputs, outputs, attrs);
    }

    /// <summary>Makes every reader of <paramref name="from"/> (nodes and graph outputs) read <paramref name="to"/> instead.</summary>
    public void ReplaceUses(Value from, Value to)
    {
        if (from.Type != to.Type) throw new GraphException($"cannot replace {from.Name}: {from.Type} with {to.Name}: {to.Type}");
        foreach (var node in Nodes)
        {
            for (var i = 0; i < node.Inputs.Count; i++)
            {
                if (ReferenceEquals(node.Inputs[i], from)) node.Inputs[i] = to;
            }
        }
        for (var i = 0; i < Outputs.Count; i++)
        {
            if (ReferenceEquals(Outputs[i], from)) Outputs[i] = to;
        }
    }

    /// <summary>Places <paramref name="node"/> just before <paramref name="anchor"/> in the node order.</summary>
    public void InsertBefore(Node anchor, Node node)
    {
        var index = Nodes.IndexOf(anchor);
        if (index < 0) throw new GraphException($"{anchor.Op} is not in the graph");
        Nodes.Insert(index, node);
    }

    /// <summary>Removes nodes (their outputs must no longer be read).</summary>
    public void RemoveNodes(IEnumerable<Node> nodes)
    {
        var doomed = new HashSet<Node>(nodes, ReferenceEqualityComparer.Instance);
        Nodes.RemoveAll(doomed.Contains);
    }

    /// <summary>
    /// Removes the parameters of these values (nothing may read them any more) and frees their names,
    /// so that a later transform can bring a checkpoint tensor back under its own name.
    /// </summary>
    public int RemoveParameters(IEnumerable<Value> values)
    {
        var doomed = new HashSet<Value>(values, ReferenceEqualityComparer.Instance);
        foreach (var spec in Parameters.Where(p => doomed.Contains(p.Value))) _names.Remove(spec.Name);
        return Parameters.RemoveAll(p => doomed.Contains(p.Value));
    }

    /// <summary>Adds a value read back from a serialized graph, keeping its name.</summary>
    internal Value Restore(string name, TensorType type, ValueKind kind) => new(Claim(name), type, kind);

    /// <summary>All values by name: inputs, parameters, buffers and node outputs.</summary>
    public Dictionary<string, Value> ValuesByName()
    {
        var values = new Dictionary<string, Value>(StringComparer.Ordinal);
        foreach (var v in Inputs) values[v.Name] = v;
        foreach (var p in Parameters) values[p.Name] = p.Value;
        foreach (var b in Buffers) values[b.Name] = b.Value;
        foreach (var n in Nodes) foreach (var o in n.Outputs) values[o.Name] = o;
        return values;
    }

    private string FreshName(string hint)
    {
        string name;
        do { name = $"{hint}_{NameCounter++}"; } while (_names.Contains(name));
        return name;
    }

    private string Claim(string name)
    {
        if (!_names.Add(name)) throw new GraphException($"value name '{name}' is used twice");
        return name;
    }
}
