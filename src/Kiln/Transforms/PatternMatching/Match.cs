using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>
/// What a rule's builder sees: the captures of one match, and the only way it adds nodes (emitted
/// before the root, or at the graph's start), so that the engine can remove them if the builder declines.
/// </summary>
public sealed class Match
{
    private readonly ImmutableDictionary<string, Value> _captures;
    private readonly List<Node> _emitted = [];

    internal Match(ModelGraph graph, Node root, ImmutableDictionary<string, Value> captures)
    {
        Graph = graph;
        Root = root;
        _captures = captures;
    }

    /// <summary>The graph, for what a builder reads (metadata, names) and the parameters it adds; never for nodes.</summary>
    public ModelGraph Graph { get; }

    /// <summary>The node the match is anchored at; its value is replaced by the builder's first result.</summary>
    public Node Root { get; }

    internal IReadOnlyList<Node> Emitted => _emitted;

    public Value this[string capture] =>
        _captures.TryGetValue(capture, out var value) ? value : throw new KeyNotFoundException($"the pattern captures no '{capture}'");

    /// <summary>The node that computes a captured value.</summary>
    public Node Producer(string capture) =>
        this[capture].Producer ?? throw new InvalidOperationException($"'{capture}' is not a node output");

    /// <summary>The value of a captured scalar <c>constant</c>.</summary>
    public double Constant(string capture) => Producer(capture).Float("value");

    /// <summary>
    /// Creates a node just before the root and returns it. Its outputs are named in the root's scope
    /// after <paramref name="name"/> (default: the op), e.g. "layers.0.qkv_proj_57".
    /// </summary>
    public Node EmitNode(string op, IReadOnlyList<Value> inputs, Dictionary<string, AttributeValue>? attributes = null, string? name = null)
    {
        var scope = Root.Outputs[0].Name;
        var dot = scope.LastIndexOf('.');
        name ??= op;
        var node = Graph.CreateNode(op, inputs, attributes, dot < 0 ? name : $"{scope[..dot]}.{name}");
        Graph.InsertBefore(Root, node);
        _emitted.Add(node);
        return node;
    }

    /// <summary>
    /// Creates a one-output node at the start of the graph, its output named after <paramref name="name"/>
    /// in no scope, and returns its value: for nodes that later matches read too (rotary's cos/sin
    /// caches, read by every layer). Its inputs must not be node outputs.
    /// </summary>
    public Value EmitAtStart(string op, IReadOnlyList<Value> inputs, Dictionary<string, AttributeValue> attributes, string name)
    {
        var node = Graph.CreateNode(op, inputs, attributes, name);
        Graph.InsertBefore(Graph.Nodes[0], node);
        _emitted.Add(node);
        return node.Output;
    }

    /// <summary>Like <see cref="EmitNode"/>, for a one-output op: returns its value.</summary>
    public Value Emit(string op, IReadOnlyList<Value> inputs, Dictionary<string, AttributeValue>? attributes = null) =>
        EmitNode(op, inputs, attributes).Output;
}
