using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// post_export: removes nodes that hand an input through unchanged, so its readers read that input:
/// reshape, slice and expand whose output type equals the input's, cast to the same dtype, transpose
/// by the identity permutation, add of constant 0 (either side), mul by constant 1 (either side) and
/// div by constant 1, the arithmetic ones only where no broadcasting enlarges the result.
/// </summary>
public sealed class RemoveNoOpsTransform : Transform<TransformConfig>
{
    public override string Name => "remove_no_ops";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var constants = new Dictionary<Value, double>(ReferenceEqualityComparer.Instance);
        return ValueForwarding.Forward(graph, node =>
        {
            if (node.Op == "constant") constants[node.Output] = node.Float("value");
            return PassedThrough(node, constants) is { } source ? [source] : null;
        });
    }

    /// <summary>The input <paramref name="node"/> hands through unchanged, or null.</summary>
    private static Value? PassedThrough(Node node, Dictionary<Value, double> constants)
    {
        bool Is(int input, double value) => constants.TryGetValue(node.Inputs[input], out var v) && v == value;
        Value? IfSameType(int input) => node.Inputs[input].Type == node.Output.Type ? node.Inputs[input] : null;

        return node.Op switch
        {
            "reshape" or "slice" or "expand" or "cast" => IfSameType(0),
            "transpose" => node.Ints("perm").Select((p, i) => p == i).All(b => b) ? node.Inputs[0] : null,
            "add" => (Is(1, 0) ? IfSameType(0) : null) ?? (Is(0, 0) ? IfSameType(1) : null),
            "mul" => (Is(1, 1) ? IfSameType(0) : null) ?? (Is(0, 1) ? IfSameType(1) : null),
            "div" => Is(1, 1) ? IfSameType(0) : null,
            _ => null,
        };
    }
}
