namespace Kiln.Graph;

/// <summary>Where a value comes from.</summary>
public enum ValueKind { Input, Parameter, Buffer, NodeOutput }

/// <summary>
/// A named tensor in a graph: a graph input, a parameter (weights, bound late), a buffer (small tensor
/// computed at export) or the output of exactly one node. A value knows its producer and its users;
/// the graph keeps both up to date as it is edited (transforms only read them).
/// </summary>
public sealed class Value
{
    private readonly List<Node> _users = [];
    private int _outputSlots;

    internal Value(ModelGraph graph, string name, TensorType type, ValueKind kind)
    {
        Graph = graph;
        Name = name;
        Type = type;
        Kind = kind;
        Users = _users.AsReadOnly();
    }

    /// <summary>The graph that made this value; no other graph may read it.</summary>
    internal ModelGraph Graph { get; }

    public string Name { get; }

    public TensorType Type { get; set; }

    public ValueKind Kind { get; }

    public DType DType => Type.DType;

    public Shape Shape => Type.Shape;

    /// <summary>The node that computes this value; null for inputs, parameters and buffers.</summary>
    public Node? Producer { get; internal set; }

    /// <summary>
    /// The nodes of the graph that read this value, each once however many of its inputs it is, in the
    /// order they started reading it (not the graph's order). A live view: copy it to edit while iterating.
    /// </summary>
    public IReadOnlyList<Node> Users { get; }

    /// <summary>Whether the graph returns this value.</summary>
    public bool IsGraphOutput => _outputSlots > 0;

    /// <summary>Whether anything still needs this value: a node reads it or the graph returns it.</summary>
    public bool IsUsed => _users.Count > 0 || IsGraphOutput;

    /// <summary>
    /// Whether the value is in its graph now: an input, parameter or buffer not removed, or an output of
    /// a node placed in the node list and not erased.
    /// </summary>
    public bool IsInGraph { get; internal set; }

    public override string ToString() => Name;

    internal void AddUser(Node node)
    {
        if (!_users.Contains(node)) _users.Add(node);
    }

    internal void RemoveUser(Node node) => _users.Remove(node);

    internal void AddOutputSlot() => _outputSlots++;

    internal void RemoveOutputSlot() => _outputSlots--;
}
