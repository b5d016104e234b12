using System.Collections.Immutable;
using Kiln.Graph;

namespace Kiln.Transforms.PatternMatching;

/// <summary>What a rule's builder sees: the captures of one match, and a way to emit nodes before its root.</summary>
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

    /// <summary>Creates a node just before the root, named in the root's scope, and returns it.</summary>
    public Node EmitNode(string op, IReadOnlyList<Value> inputs, Dictionary<string, AttributeValue>? attributes = null)
    {
        var scope = Root.Outputs[0].Name;
        var dot = scope.LastIndexOf('.');
        var node = Graph.CreateNode(op, inputs, attributes, dot < 0 ? op : $"{scope[..dot]}.{op}");
        Graph.InsertBefore(Root, node);
        _emitted.Add(node);
        return node;
    }

    /// <summary>Like <see cref="EmitNode"/>, for a one-output op: returns its value.</summary>
    public Value Emit(string op, IReadOnlyList<Value> inputs, Dictionary<string, AttributeValue>? attributes = null) =>
        EmitNode(op, inputs, attributes).Output;
}
