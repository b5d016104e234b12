using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.Compile;

/// <summary>
/// compile: every <c>quantized_linear</c> over int4_sym blocks becomes <c>matmul_nbits</c>, ONNX Runtime's
/// MatMulNBits, whose MLAS kernels use the widest integer dot products the CPU has (AVX-512 VNNI where
/// present, which .NET 10 cannot emit on CPUs without AVX10). The weight's blocks are re-laid as that op's
/// two tensors by load-recipe steps (<see cref="NBitsLayoutStep"/>), NAME.nbits_data and NAME.nbits_scales
/// (products of the weights tier, so a warm start maps them), and ORT pre-packs them at session creation
/// (select_session_options turns pre-packing on for it). Same values, so the same products up to the
/// order of the sums; measured faster for prefill, level for one-row decode (docs/weights.md).
/// int8 and int4 (with a minimum per block) stay on Kiln's kernel.
/// </summary>
public sealed class UseMatMulNBitsTransform : Transform<TransformConfig>
{
    public override string Name => "use_matmul_nbits";

    public override Stage Stage => Stage.Compile;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        var products = graph.Nodes
            .Where(n => n.Op == "quantized_linear" && n.String("scheme") == QuantScheme.Int4Sym.Name() && parameters.ContainsKey(n.Inputs[1]))
            .ToList();
        // Per weight, so that a weight read by several products is re-laid once.
        var tensorsOf = new Dictionary<Value, (Value Data, Value Scales)>(ReferenceEqualityComparer.Instance);
        foreach (var product in products)
        {
            var weight = parameters[product.Inputs[1]];
            if (!tensorsOf.TryGetValue(weight.Value, out var tensors))
            {
                tensors = Relaid(graph, weight);
                tensorsOf[weight.Value] = tensors;
            }
            graph.ReplaceNode(product, "matmul_nbits", [product.Inputs[0], tensors.Data, tensors.Scales]);
        }
        foreach (var weight in tensorsOf.Keys.Where(w => w.Users.Count == 0 && !w.IsGraphOutput)) graph.RemoveParameter(parameters[weight]);
        return products.Count;
    }

    // NAME.nbits_data u8 [n, blocks, 16] and NAME.nbits_scales f32 [n, blocks], listed where the blocks were.
    private static (Value Data, Value Scales) Relaid(ModelGraph graph, ParameterSpec weight)
    {
        var (n, blocks) = (weight.Value.Shape[0].Size, weight.Value.Shape[1].Size / QuantScheme.Int4Sym.BlockBytes());
        var at = graph.Parameters.IndexOf(weight) + 1;
        var data = graph.InsertParameter(at, $"{weight.Name}.nbits_data", DType.U8, [n, blocks, QuantSchemes.BlockSize / 2],
            weight.Recipe.Then(new NBitsLayoutStep(NBitsPart.Data)));
        var scales = graph.InsertParameter(at + 1, $"{weight.Name}.nbits_scales", DType.F32, [n, blocks],
            weight.Recipe.Then(new NBitsLayoutStep(NBitsPart.Scales)));
        return (data.Value, scales.Value);
    }
}
