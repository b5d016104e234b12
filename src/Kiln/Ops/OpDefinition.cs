using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>
/// An op, declared once: its name, how many inputs it takes, its attribute schema, its type inference
/// and its lowering to ONNX.
/// </summary>
public sealed record OpDefinition(
    string Name,
    int MinInputs,
    int MaxInputs,
    IReadOnlyList<AttributeSpec> Attributes,
    Func<InferenceContext, TensorType[]> Infer,
    Action<LoweringContext> Lower)
{
    /// <summary>Checks inputs and attributes against the schema and infers the output types.</summary>
    public TensorType[] InferTypes(IReadOnlyList<TensorType> inputs, IReadOnlyDictionary<string, AttributeValue> attributes)
    {
        if (inputs.Count < MinInputs || inputs.Count > MaxInputs)
            throw new GraphException($"{Name}: takes {MinInputs}..{MaxInputs} inputs, got {inputs.Count}");
        foreach (var (name, value) in attributes)
        {
            var spec = Attributes.FirstOrDefault(a => a.Name == name) ?? throw new GraphException($"{Name}: unknown attribute '{name}'");
            if (!spec.Accepts(value)) throw new GraphException($"{Name}: attribute '{name}' must be {spec.Kind}");
        }
        var complete = new Dictionary<string, AttributeValue>(attributes);
        foreach (var spec in Attributes)
        {
            if (complete.ContainsKey(spec.Name)) continue;
            complete[spec.Name] = spec.Default ?? throw new GraphException($"{Name}: attribute '{spec.Name}' is required");
        }
        try
        {
            return Infer(new InferenceContext(Name, inputs, complete));
        }
        catch (Exception e) when (e is ArgumentException or OverflowException)
        {
            // Inputs no traced graph has (a restored graph with one op swapped for another, a hostile size) can
            // make the shape arithmetic leave its domain, a negative dimension or a sum past 64 bits: that is
            // an invalid graph.
            throw new GraphException($"{Name}: cannot infer the output types of inputs [{string.Join(", ", inputs)}]: {e.Message}");
        }
    }
}
