using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Export;

/// <summary>
/// Records tensor operations into a <see cref="ModelGraph"/>. Model definitions call the
/// <see cref="Tensor"/> API, which reads like the PyTorch code it mirrors; every call appends a node.
/// </summary>
public sealed class Tracer(OpRegistry registry)
{
    private readonly Stack<string> _scopes = new();
    private readonly Dictionary<ModelWeight, Tensor> _parameters = new(ReferenceEqualityComparer.Instance);

    public ModelGraph Graph { get; } = new(registry);

    public Tensor Input(string name, DType dtype, params Dim[] dims) => new(this, Graph.AddInput(name, dtype, Shape.Of(dims)));

    /// <summary>
    /// A weight of the model's description, computed in fp32: the graph parameter its recipe makes. A
    /// weight read twice (an output layer tied to the embedding) is one parameter.
    /// </summary>
    public Tensor Parameter(ModelWeight weight)
    {
        if (!_parameters.TryGetValue(weight, out var tensor))
        {
            tensor = new Tensor(this, Graph.AddParameter(weight.Name, DType.F32, weight.Shape, weight.Recipe).Value);
            _parameters[weight] = tensor;
        }
        return tensor;
    }

    /// <summary>A weight from the checkpoint tensor of the same name, computed in fp32.</summary>
    public Tensor Parameter(string name, params long[] shape) => Parameter(new ModelWeight(name, shape, LoadRecipe.FromSource(name)));

    public Tensor Buffer(string name, float[] values) =>
        new(this, Graph.AddBuffer(name, DType.F32, [values.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray()).Value);

    public Tensor Scalar(double value, DType dtype) =>
        Op("constant", [], new() { ["value"] = value, ["dtype"] = dtype.Name() });

    /// <summary>Names the nodes recorded inside the returned scope after a module path ("layers.0.self_attn").</summary>
    public IDisposable Scope(string name)
    {
        _scopes.Push(name);
        return new ScopeExit(_scopes);
    }

    public Tensor Op(string op, Tensor[] inputs, Dictionary<string, AttributeValue>? attributes = null)
    {
        var hint = _scopes.Count == 0 ? op : $"{_scopes.Peek()}.{op}";
        var node = Graph.AddNode(op, inputs.Select(i => i.Value).ToArray(), attributes, hint);
        return new Tensor(this, node.Output);
    }

    public void Output(Tensor tensor) => Graph.Outputs.Add(tensor.Value);

    private sealed class ScopeExit(Stack<string> scopes) : IDisposable
    {
        public void Dispose() => scopes.Pop();
    }
}
