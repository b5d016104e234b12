using Kiln.Graph;

namespace Kiln.Benchmarks;

/// <summary>The format the matrix-product kernels read a compiled graph's weights in.</summary>
public static class WeightFormat
{
    public const string Mixed = "mixed", None = "none";

    /// <summary>
    /// The dtype name of every weight parameter a matrix product reads (<c>kiln_linear</c>'s weights, or
    /// <c>linear</c>'s when ORT's MatMul runs them), e.g. "f32", "bf16" or "f16"; "mixed" when they differ,
    /// "none" without such products.
    /// </summary>
    public static string Of(ModelGraph graph)
    {
        var parameters = graph.Parameters.Select(p => p.Value).ToHashSet(ReferenceEqualityComparer.Instance);
        var formats = graph.Nodes
            .SelectMany(n => n.Op switch
            {
                "kiln_linear" => n.Inputs.Skip(1),
                "linear" => [n.Inputs[1]],
                _ => [],
            })
            .Where(parameters.Contains)
            .Select(v => v.DType.Name())
            .Distinct()
            .ToList();
        return formats switch
        {
            [] => None,
            [var one] => one,
            _ => Mixed,
        };
    }
}
