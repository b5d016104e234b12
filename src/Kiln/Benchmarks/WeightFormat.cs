using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Benchmarks;

/// <summary>The format the matrix-product kernels read a compiled graph's weights in.</summary>
public static class WeightFormat
{
    public const string Mixed = "mixed", None = "none";

    /// <summary>
    /// The dtype name of every weight parameter a matrix product reads (<c>kiln_linear</c>'s weights, or
    /// <c>linear</c>'s when ORT's MatMul runs them), e.g. "f32", "bf16" or "f16", or the scheme of
    /// <c>quantized_linear</c>'s packed weights ("int8", "int4", "int4_sym"); "mixed" when they differ,
    /// "none" without such products.
    /// </summary>
    public static string Of(ModelGraph graph)
    {
        var parameters = graph.Parameters.Select(p => p.Value).ToHashSet(ReferenceEqualityComparer.Instance);
        var formats = graph.Nodes
            .SelectMany(n => n.Op switch
            {
                "kiln_linear" => n.Inputs.Skip(1).Where(parameters.Contains).Select(v => v.DType.Name()),
                "linear" => new[] { n.Inputs[1] }.Where(parameters.Contains).Select(v => v.DType.Name()),
                // A packed weight's format is its quantization scheme, not its storage type (u8).
                "quantized_linear" => [n.String("scheme")],
                "matmul_nbits" => [QuantScheme.Int4Sym.Name()],
                _ => [],
            })
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
