using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Weights;

namespace Kiln.Ops;

/// <summary>Products with block-quantized weights (placed by quantize_weights).</summary>
public static class QuantizedOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // quantized_linear(x, w) = x @ dequantize(w)^T for float32 x [..., k] and w u8 [out, RowBytes(k)]
        // packed by the quantize recipe step; runs on Kiln's kernel (Kernels/QuantizedLinearKernel).
        yield return new("quantized_linear", 2, 2, [AttributeSpec.String("scheme")], c =>
        {
            var (x, w) = (c[0].Shape, c[1].Shape);
            var scheme = Scheme(c.String("scheme")) ?? throw c.Error($"scheme '{c.String("scheme")}' is not one of {QuantSchemes.All}");
            if (c[0].DType != DType.F32 || c[1].DType != DType.U8) throw c.Error("x must be float32 and the weight u8");
            if (x.Rank < 1 || !x[^1].IsKnown) throw c.Error("x must have a known last dimension");
            var rowBytes = scheme.RowBytes(x[^1].Size);
            if (w.Rank != 2 || !w[0].IsKnown || w[1] != Dim.Of(rowBytes))
                throw c.Error($"weight must be [out, {rowBytes}]: {x[^1].Size} inputs in {scheme.Name()} blocks of {QuantSchemes.BlockSize}");
            return [new TensorType(DType.F32, x.With(x.Rank - 1, w[0]))];
        }, l => l.Emit(QuantizedLinearKernel.OpType(Scheme(l.Node.String("scheme"))!.Value), l.Inputs, domain: OnnxGraphBuilder.KilnDomain));
    }

    private static QuantScheme? Scheme(string name) => QuantSchemes.TryParse(name, out var scheme) ? scheme : null;
}
