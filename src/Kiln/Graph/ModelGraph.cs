using System.Collections.ObjectModel;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Graph;

/// <summary>
/// The graph IR: inputs, parameters, buffers, a topologically ordered node list and outputs.
/// Node output types are inferred by the op registry as nodes are added. The lists are live, read-only
/// views: every change goes through the methods below, which keep each value's producer and users
/// right and refuse an edit that would break the graph (erasing a node still read, reading a value
/// that is not in the graph, reusing a name), at the call rather than later in the verifier.
/// </summary>
public sealed class ModelGraph
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly List<Value> _inputs = [];
    private readonly List<ParameterSpec> _parameters = [];
    private readonly List<BufferTensor> _buffers = [];
    private readonly List<Node> _nodes = [];

    public ModelGraph(OpRegistry registry)
    {
        Registry = registry;
        Inputs = _inputs.AsReadOnly();
        Parameters = _parameters.AsReadOnly();
        Buffers = _buffers.AsReadOnly();
        Nodes = _nodes.AsReadOnly();
        Outputs = new GraphOutputs(this);
    }

    /// <summary>
    /// The next numeric suffix for fresh value names. Kept in the JSON form so a graph restored from a
    /// snapshot names the values later transforms create exactly as the original graph would.
    /// </summary>
    internal int NameCounter { get; set; }

    public OpRegistry Registry { get; }

    public ReadOnlyCollection<Value> Inputs { get; }

    public ReadOnlyCollection<ParameterSpec> Parameters { get; }

    public ReadOnlyCollection<BufferTensor> Buffers { get; }

    public ReadOnlyCollection<Node> Nodes { get; }

    public GraphOutputs Outputs { get; }

    /// <summary>What each transform of the pipeline did to this graph, in order.</summary>
    public List<TransformInfo> History { get; } = [];

    /// <summary>The model the graph computes, as its config.json describes it (vocabulary, context length, sizes); null for a graph built by hand.</summary>
    public ModelFacts? Model { get; set; }

    /// <summary>Notes transforms leave for the runtime (the key/value cache's signature, session choices).</summary>
    public SortedDictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public Value AddInput(string name, DType dtype, Shape shape)
    {
        var value = NewValue(name, new TensorType(dtype, shape), ValueKind.Input);
        _inputs.Add(value);
        return value;
    }

    public ParameterSpec AddParameter(string name, DType dtype, long[] shape, LoadRecipe recipe) =>
        InsertParameter(_parameters.Count, name, dtype, shape, recipe);

    /// <summary>Adds a parameter at <paramref name="index"/> of the list (where a transform wants it listed, e.g. beside the weights it replaces).</summary>
    public ParameterSpec InsertParameter(int index, string name, DType dtype, long[] shape, LoadRecipe recipe)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, _parameters.Count);
        var spec = new ParameterSpec(NewValue(name, new TensorType(dtype, Shape.Of(shape)), ValueKind.Parameter), recipe);
        _parameters.Insert(index, spec);
        return spec;
    }

    public BufferTensor AddBuffer(string name, DType dtype, long[] shape, byte[] data)
    {
        var expected = shape.Aggregate(1L, (a, b) => a * b) * dtype.ByteSize();
        if (data.Length != expected) throw new GraphException($"buffer {name}: {data.Length} bytes for shape [{string.Join(", ", shape)}] of {dtype.Name()}");
        var buffer = new BufferTensor(NewValue(name, new TensorType(dtype, Shape.Of(shape)), ValueKind.Buffer), data);
        _buffers.Add(buffer);
        return buffer;
    }

    /// <summary>Removes a graph input that nothing uses any more and frees its name.</summary>
    public void RemoveInput(Value input)
    {
        CheckRemovable(input, "input");
        if (!_inputs.Remove(input)) throw new GraphException($"'{input.Name}' is not a graph input");
        Forget(input);
    }

    /// <summary>
    /// Removes a parameter that nothing uses any more and frees its name, so that a later transform can
    /// bring a checkpoint tensor back under its own name.
    /// </summary>
    public void RemoveParameter(ParameterSpec parameter)
    {
        CheckRemovable(parameter.Value, "parameter");
        if (!_parameters.Remove(parameter)) throw new GraphException($"'{parameter.Name}' is not a parameter of the graph");
        Forget(parameter.Value);
    }

    /// <summary>Removes a buffer that nothing uses any more and frees its name.</summary>
    public void RemoveBuffer(BufferTensor buffer)
    {
        CheckRemovable(buffer.Value, "buffer");
        if (!_buffers.Remove(buffer)) throw new GraphException($"'{buffer.Name}' is not a buffer of the graph");
        Forget(buffer.Value);
    }

    /// <summary>Appends a node; its outputs' types come from the op's shape inference.</summary>
    public Node AddNode(string op, IReadOnlyList<Value> inputs, IReadOnlyDictionary<string, AttributeValue>? attributes = null, string? nameHint = null)
    {
        var node = CreateNode(op, inputs, attributes, nameHint);
        Place(_nodes.Count, node);
        return node;
    }

    /// <summary>
    /// Makes a node with fresh output values without placing it; transforms insert it where they need it.
    /// <paramref name="outputNames"/>, when given, names the outputs exactly (e.g. outputs of the graph's signature).
    /// The node reads its inputs (which must be in the graph) only once it is placed.
    /// </summary>
    public Node CreateNode(string op, IReadOnlyList<Value> inputs, IReadOnlyDictionary<string, AttributeValue>? attributes = null,
        string? nameHint = null, IReadOnlyList<string>? outputNames = null)
    {
        foreach (var input in inputs) CheckReadable(input, op);
        var definition = Registry.Get(op);
        var attrs = attributes ?? new Dictionary<string, AttributeValue>();
        var types = definition.InferTypes(inputs.Select(i => i.Type).ToArray(), attrs);
        if (outputNames != null && outputNames.Count != types.Length)
            throw new GraphException($"{op}: {outputNames.Count} output names for {types.Length} outputs");
        var outputs = types.Select((t, i) => NewValue(outputNames?[i] ?? FreshName(nameHint ?? op), t, ValueKind.NodeOutput)).ToArray();
        return new Node(this, op, inputs, outputs, attrs);
    }

    /// <summary>Places <paramref name="node"/> just before <paramref name="anchor"/> in the node order.</summary>
    public void InsertBefore(Node anchor, Node node) => Place(IndexOf(anchor), node);

    /// <summary>Places <paramref name="node"/> just after <paramref name="anchor"/> in the node order.</summary>
    public void InsertAfter(Node anchor, Node node) => Place(IndexOf(anchor) + 1, node);

    /// <summary>
    /// Makes every reader of <paramref name="from"/> (nodes and graph outputs) read <paramref name="to"/>
    /// instead, except the node that computes <paramref name="to"/>: a node made from <paramref name="from"/>
    /// (a cast of it, say) can thus take its place without reading itself.
    /// </summary>
    public void ReplaceUses(Value from, Value to)
    {
        if (from.Type != to.Type) throw new GraphException($"cannot replace {from.Name}: {from.Type} with {to.Name}: {to.Type}");
        if (ReferenceEquals(from, to)) return;
        CheckReadable(to, $"replacing {from.Name}");
        foreach (var reader in from.Users.Where(n => !ReferenceEquals(n, to.Producer)).ToList())
        {
            for (var i = 0; i < reader.Inputs.Count; i++)
            {
                if (ReferenceEquals(reader.Inputs[i], from)) reader.SetInput(i, to);
            }
            from.RemoveUser(reader);
            to.AddUser(reader);
        }
        if (from.IsGraphOutput) Outputs.Replace(from, to);
    }

    /// <summary>Removes a node none of whose outputs is used (read by a node or returned by the graph).</summary>
    public void EraseNode(Node node) => EraseNodes([node]);

    /// <summary>
    /// Removes nodes whose outputs are used only among themselves (a dead subgraph, the nodes a rewrite
    /// replaced). They stop reading their inputs, and their outputs' names are freed.
    /// </summary>
    public void EraseNodes(IEnumerable<Node> nodes)
    {
        var doomed = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var order = new List<Node>();
        foreach (var node in nodes)
        {
            if (doomed.Add(node)) order.Add(node);
        }
        foreach (var node in order)
        {
            CheckPlaced(node);
            foreach (var output in node.Outputs)
            {
                if (output.IsGraphOutput) throw new GraphException($"cannot erase '{node}': its output '{output.Name}' is a graph output");
                if (output.Users.FirstOrDefault(reader => !doomed.Contains(reader)) is { } reader)
                    throw new GraphException($"cannot erase '{node}': its output '{output.Name}' is read by '{reader}'");
            }
        }
        _nodes.RemoveAll(doomed.Contains);
        foreach (var node in order)
        {
            Detach(node);
            foreach (var output in node.Outputs) Forget(output);
        }
    }

    /// <summary>
    /// Puts a node of <paramref name="op"/> in <paramref name="node"/>'s place that computes the same output
    /// values (constant folding): the values keep their names and readers, only their producer changes.
    /// The new op's inferred types must be the outputs' types.
    /// </summary>
    public Node ReplaceNode(Node node, string op, IReadOnlyList<Value> inputs, IReadOnlyDictionary<string, AttributeValue>? attributes = null)
    {
        var index = IndexOf(node);
        foreach (var input in inputs) CheckReadable(input, op);
        var attrs = attributes ?? new Dictionary<string, AttributeValue>();
        var types = Registry.Get(op).InferTypes(inputs.Select(i => i.Type).ToArray(), attrs);
        if (!types.SequenceEqual(node.Outputs.Select(o => o.Type)))
            throw new GraphException($"{op} computes {string.Join(", ", types)}, not {string.Join(", ", node.Outputs.Select(o => o.Type))} as {node.Op} did");
        Detach(node);
        var replacement = new Node(this, op, inputs, node.Outputs, attrs);
        _nodes[index] = replacement;
        Attach(replacement);
        return replacement;
    }

    /// <summary>Reorders the nodes so that each follows the producers of its inputs, keeping the order wherever it is valid.</summary>
    public void SortTopologically()
    {
        var visited = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var order = new List<Node>(_nodes.Count);
        void Visit(Node node)
        {
            if (!visited.Add(node)) return;
            foreach (var input in node.Inputs)
            {
                if (input.Producer is { } producer) Visit(producer);
            }
            order.Add(node);
        }
        foreach (var node in _nodes) Visit(node);
        _nodes.Clear();
        _nodes.AddRange(order);
    }

    /// <summary>
    /// Appends a node read back from a serialized graph, whose outputs keep the names and types it recorded
    /// (the verifier then checks those types), and returns it.
    /// </summary>
    internal Node AppendRestored(string op, IReadOnlyList<Value> inputs, IReadOnlyList<(string Name, TensorType Type)> outputs,
        IReadOnlyDictionary<string, AttributeValue> attributes)
    {
        var node = new Node(this, op, inputs, outputs.Select(o => NewValue(o.Name, o.Type, ValueKind.NodeOutput)).ToArray(), attributes);
        Place(_nodes.Count, node);
        return node;
    }

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

    internal void ReplaceInput(Node node, int index, Value value)
    {
        var old = node.Inputs[index];
        if (old.Type != value.Type) throw new GraphException($"{node.Op}: cannot replace input {old.Name}: {old.Type} with {value.Name}: {value.Type}");
        CheckReadable(value, node.Op);
        node.SetInput(index, value);
        if (!node.IsInGraph) return;
        if (!node.Inputs.Contains(old)) old.RemoveUser(node);
        value.AddUser(node);
    }

    /// <summary>Refuses a value of another graph, or one that is not (or no longer) in this one.</summary>
    internal void CheckReadable(Value value, string reader)
    {
        if (!ReferenceEquals(value.Graph, this)) throw new GraphException($"{reader}: '{value.Name}' is a value of another graph");
        if (!value.IsInGraph) throw new GraphException($"{reader}: '{value.Name}' is not in the graph");
    }

    private void Place(int index, Node node)
    {
        if (!ReferenceEquals(node.Graph, this)) throw new GraphException($"'{node}' is a node of another graph");
        if (node.IsInGraph) throw new GraphException($"'{node}' is already in the graph");
        if (node.IsErased) throw new GraphException($"'{node}' was erased; make a new node");
        // Checked again: an input may have left the graph since the node was made.
        foreach (var input in node.Inputs) CheckReadable(input, node.Op);
        _nodes.Insert(index, node);
        Attach(node);
        foreach (var output in node.Outputs) output.IsInGraph = true;
    }

    private void Attach(Node node)
    {
        node.IsInGraph = true;
        foreach (var input in node.Inputs) input.AddUser(node);
    }

    private void Detach(Node node)
    {
        node.IsInGraph = false;
        node.IsErased = true;
        foreach (var input in node.Inputs) input.RemoveUser(node);
    }

    private int IndexOf(Node anchor)
    {
        CheckPlaced(anchor);
        return _nodes.IndexOf(anchor);
    }

    private void CheckPlaced(Node node)
    {
        if (!ReferenceEquals(node.Graph, this) || !node.IsInGraph) throw new GraphException($"'{node}' is not in the graph");
    }

    private void CheckRemovable(Value value, string what)
    {
        if (!ReferenceEquals(value.Graph, this) || !value.IsInGraph) throw new GraphException($"{what} '{value.Name}' is not in the graph");
        if (value.IsGraphOutput) throw new GraphException($"cannot remove {what} '{value.Name}': it is a graph output");
        if (value.Users.Count > 0) throw new GraphException($"cannot remove {what} '{value.Name}': it is read by '{value.Users[0]}'");
    }

    private Value NewValue(string name, TensorType type, ValueKind kind) =>
        new(this, Claim(name), type, kind) { IsInGraph = kind != ValueKind.NodeOutput };

    // A value that left the graph: no longer readable, and its name is free again, as in a graph read back from its JSON form.
    private void Forget(Value value)
    {
        value.IsInGraph = false;
        _names.Remove(value.Name);
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
