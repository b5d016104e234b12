using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>Matrix products, reductions and softmax.</summary>
public static class LinearAlgebraOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // Batched matrix product with broadcast batch dimensions, as torch.matmul for rank >= 2.
        yield return new("matmul", 2, 2, [], c =>
        {
            var (a, b) = (c[0].Shape, c[1].Shape);
            if (a.Rank < 2 || b.Rank < 2) throw c.Error("inputs must have rank >= 2");
            if (a[^1] != b[^2]) throw c.Error($"inner dimensions {a[^1]} and {b[^2]} differ");
            var batch = ShapeMath.Broadcast(new Shape(a.Dims.SkipLast(2)), new Shape(b.Dims.SkipLast(2)));
            return [new TensorType(c.SameDType(), new Shape(batch.Dims.Append(a[^2]).Append(b[^1])))];
        }, l => l.Emit("MatMul", l.Inputs));

        // linear(x, weight[out, in], bias[out]?) = x @ weight^T + bias, as torch.nn.functional.linear.
        yield return new("linear", 2, 3, [], c =>
        {
            var (x, w) = (c[0].Shape, c[1].Shape);
            if (w.Rank != 2 || x.Rank < 1 || x[^1] != w[1]) throw c.Error("weight must be [out, in] with in = x's last dimension");
            if (c.Inputs.Count == 3 && (c[2].Shape.Rank != 1 || c[2].Shape[0] != w[0])) throw c.Error("bias must be [out]");
            return [new TensorType(c.SameDType(), x.With(x.Rank - 1, w[0]))];
        }, LowerLinear);

        yield return Reduction("mean", "ReduceMean");

        // The largest element over the axes (Phi-3's LongRoPE switches on the largest position of a call).
        yield return Reduction("max", "ReduceMax");

        yield return new("softmax", 1, 1, [AttributeSpec.Int("axis", -1)], c =>
        {
            c[0].Shape.NormalizeAxis(c.Int("axis"));
            return [c[0]];
        }, l => l.Emit("Softmax", l.Inputs, new Dictionary<string, object> { ["axis"] = l.Node.Int("axis") }));
    }

    // op(x, axes, keepdim): a reduction over the axes, which keepdim keeps as dimensions of 1.
    private static OpDefinition Reduction(string name, string onnxOp) =>
        new(name, 1, 1, [AttributeSpec.Ints("axes"), AttributeSpec.Int("keepdim", 1)], c =>
        {
            var shape = c[0].Shape;
            var axes = c.Ints("axes").Select(a => shape.NormalizeAxis(a)).ToHashSet();
            var keep = c.Int("keepdim") != 0;
            var dims = shape.Dims.Select((d, i) => (d, i)).Where(p => keep || !axes.Contains(p.i))
                .Select(p => axes.Contains(p.i) ? Dim.Of(1) : p.d);
            return [c[0] with { Shape = new Shape(dims) }];
        }, l => l.Emit(onnxOp, [l.Input(0), l.Int64s("axes", l.Node.Ints("axes"))], new Dictionary<string, object> { ["keepdims"] = l.Node.Int("keepdim") }));

    // com.microsoft FusedMatMul multiplies by the weight's transpose in the kernel (any batch rank), so the
    // [out, in] weight is used as stored: no transposed copy, and nothing for ORT to constant-fold.
    private static void LowerLinear(LoweringContext l)
    {
        var transposeB = new Dictionary<string, object> { ["transB"] = 1L };
        if (l.Node.Inputs.Count == 2)
        {
            l.Emit("FusedMatMul", l.Inputs, transposeB, OnnxGraphBuilder.MicrosoftDomain);
            return;
        }
        var product = l.Temp("FusedMatMul", [l.Input(0), l.Input(1)], transposeB, OnnxGraphBuilder.MicrosoftDomain);
        l.Emit("Add", [product, l.Input(2)]);
    }
}
