using System.Collections;

namespace Kiln.Graph;

/// <summary>
/// The values a graph returns, in order. A value may be returned by several slots; each value counts
/// the slots that return it (<see cref="Value.IsGraphOutput"/>), so only the graph changes them:
/// <see cref="Add"/> here, <see cref="ModelGraph.ReplaceUses"/> to return another value.
/// </summary>
public sealed class GraphOutputs : IReadOnlyList<Value>
{
    private readonly ModelGraph _graph;
    private readonly List<Value> _values = [];

    internal GraphOutputs(ModelGraph graph) => _graph = graph;

    public int Count => _values.Count;

    public Value this[int index] => _values[index];

    /// <summary>Returns one more value, which must be in the graph.</summary>
    public void Add(Value value)
    {
        _graph.CheckReadable(value, "graph output");
        _values.Add(value);
        value.AddOutputSlot();
    }

    internal void Replace(Value from, Value to)
    {
        for (var i = 0; i < _values.Count; i++)
        {
            if (!ReferenceEquals(_values[i], from)) continue;
            _values[i] = to;
            from.RemoveOutputSlot();
            to.AddOutputSlot();
        }
    }

    public IEnumerator<Value> GetEnumerator() => _values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
