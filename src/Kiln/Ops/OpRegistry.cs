namespace Kiln.Ops;

/// <summary>
/// The ops a graph may use, by name. Reading a graph accepts only names registered here: the IR is
/// data and never names code to run.
/// </summary>
public sealed class OpRegistry
{
    private readonly Dictionary<string, OpDefinition> _ops = new(StringComparer.Ordinal);

    public OpRegistry(IEnumerable<OpDefinition> definitions)
    {
        foreach (var definition in definitions)
        {
            if (!_ops.TryAdd(definition.Name, definition)) throw new ArgumentException($"op '{definition.Name}' is declared twice");
        }
    }

    /// <summary>The core ops a traced model uses.</summary>
    public static OpRegistry Core { get; } = new(CoreOps.All);

    /// <summary>
    /// The core ops, the fused ops the optimizing transforms introduce, and the ops of Kiln's own kernels
    /// (registered with their backend, <see cref="Kernels.KernelOps"/>).
    /// </summary>
    public static OpRegistry Default { get; } = Core.With(FusedOps.All()).With(Kernels.KernelOps.All());

    public bool Contains(string name) => _ops.ContainsKey(name);

    public OpDefinition Get(string name) =>
        _ops.TryGetValue(name, out var definition) ? definition : throw new Graph.GraphException($"unknown op '{name}'");

    public IEnumerable<string> Names => _ops.Keys.Order(StringComparer.Ordinal);

    /// <summary>A registry with these ops added (fusions register their ops this way).</summary>
    public OpRegistry With(IEnumerable<OpDefinition> more) => new(_ops.Values.Concat(more));
}
