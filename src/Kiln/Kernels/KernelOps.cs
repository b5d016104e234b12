using Kiln.Compile;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Kernels;

/// <summary>
/// The IR ops that run on a particular kernel: Kiln's own ONNX Runtime kernels (domain <see cref="CustomOpKernel.Domain"/>)
/// and ONNX Runtime's <c>MatMulNBits</c>, declared with the kernels rather than among the core ops: the core ops mirror a
/// traced model and know no backend. <see cref="OpRegistry.Default"/> adds them.
/// </summary>
public static class KernelOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // x @ [w1; w2; ...]^T on Kiln's own kernel (LinearKernel): float32 x, weights of one float
        // type (f32, f16 or bf16, read as stored), float32 out. The weights are the pieces of one
        // [out, in] matrix, in order. use_kiln_linear places it. A single weight may instead be
        // [parts, out, in / parts], its columns in blocks (SplitColumnsStep; split_long_rows places it).
        yield return new("kiln_linear", 2, 1 + LinearKernel.MaxWeights, [], c =>
        {
            var x = c[0].Shape;
            var weights = c.Inputs.Skip(1).Select(i => i.Shape).ToList();
            if (x.Rank < 1) throw c.Error("x must have rank >= 1");
            if (weights is [{ Rank: 3 } split])
            {
                if (!split[0].IsKnown || !split[1].IsKnown || !split[2].IsKnown || !x[^1].IsKnown || split[0].Size * split[2].Size != x[^1].Size)
                    throw c.Error("a weight in column blocks must be [parts, out, in / parts] with known sizes and in = x's last dimension");
            }
            else if (weights.Any(w => w.Rank != 2 || w[1] != x[^1] || !w[0].IsKnown))
                throw c.Error("each weight must be [out, in] with a known out and in = x's last dimension");
            if (c[0].DType != DType.F32) throw c.Error("x must be float32");
            var dtype = c[1].DType;
            if (dtype is not (DType.F32 or DType.F16 or DType.BF16) || c.Inputs.Skip(1).Any(w => w.DType != dtype))
                throw c.Error("weights must all be f32, all f16 or all bf16");
            return [new TensorType(DType.F32, x.With(x.Rank - 1, Dim.Of(weights.Sum(w => w[^2].Size))))];
        }, l => l.Emit(LinearKernel.OpType, l.Inputs, domain: OnnxGraphBuilder.KilnDomain));

        // quantized_linear(x, w) = x @ dequantize(w)^T for float32 x [..., k] and w u8 [out, RowBytes(k)]
        // packed by the quantize recipe step; runs on QuantizedLinearKernel. quantize_weights places it.
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

        // matmul_nbits(x, data, scales) = x @ w^T for float32 x [..., k] and an int4_sym weight [out, k] in
        // ONNX Runtime's MatMulNBits layout (NBitsLayoutStep): data u8 [out, blocks, 16], scales f32 [out, blocks].
        // Runs on MatMulNBits with int8 activations (accuracy_level 4), MLAS's VNNI kernels. use_matmul_nbits places it.
        yield return new("matmul_nbits", 3, 3, [], c =>
        {
            var (x, data, scales) = (c[0].Shape, c[1].Shape, c[2].Shape);
            if (c[0].DType != DType.F32 || c[1].DType != DType.U8 || c[2].DType != DType.F32) throw c.Error("x must be float32, data u8 and scales float32");
            if (x.Rank < 1 || !x[^1].IsKnown) throw c.Error("x must have a known last dimension");
            var blocks = QuantSchemes.Blocks(x[^1].Size);
            if (data.Rank != 3 || !data[0].IsKnown || data[1] != Dim.Of(blocks) || data[2] != Dim.Of(QuantSchemes.BlockSize / 2))
                throw c.Error($"data must be [out, {blocks}, {QuantSchemes.BlockSize / 2}]: {x[^1].Size} inputs in blocks of {QuantSchemes.BlockSize}");
            if (scales.Rank != 2 || scales[0] != data[0] || scales[1] != Dim.Of(blocks)) throw c.Error($"scales must be [out, {blocks}], as data");
            return [new TensorType(DType.F32, x.With(x.Rank - 1, data[0]))];
        }, l => l.Emit("MatMulNBits", l.Inputs, new Dictionary<string, object>
        {
            ["K"] = l.Node.Inputs[0].Shape[^1].Size,
            ["N"] = l.Node.Inputs[1].Shape[0].Size,
            ["bits"] = 4L,
            ["block_size"] = (long)QuantSchemes.BlockSize,
            // Activations quantized to int8 per block, as Kiln's own quantized kernels do.
            ["accuracy_level"] = 4L,
        }, domain: OnnxGraphBuilder.MicrosoftDomain));

        // all_reduce(x) = the sum of x over every rank of the session's world: after a row-parallel
        // projection each rank holds a partial product (AllReduceKernel). shard_tensor_parallel places it.
        yield return new("all_reduce", 1, 1, [], c =>
        {
            if (c[0].DType != DType.F32) throw c.Error("x must be float32");
            return [c[0]];
        }, l => l.Emit(AllReduceKernel.OpType, l.Inputs, domain: OnnxGraphBuilder.KilnDomain));
    }

    private static QuantScheme? Scheme(string name) => QuantSchemes.TryParse(name, out var scheme) ? scheme : null;
}
