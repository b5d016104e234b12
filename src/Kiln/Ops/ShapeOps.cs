using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>Ops that move or select elements: reshape, transpose, unsqueeze, slice, concat, expand, gather.</summary>
public static class ShapeOps
{
    public static IEnumerable<OpDefinition> All()
    {
        // shape: ONNX convention, 0 copies the input dimension, -1 is inferred.
        yield return new("reshape", 1, 1, [AttributeSpec.Ints("shape")],
            c => [c[0] with { Shape = ShapeMath.Reshape(c[0].Shape, c.Ints("shape")) }],
            l => l.Emit("Reshape", [l.Input(0), l.Int64s("shape", l.Node.Ints("shape"))]));

        yield return new("transpose", 1, 1, [AttributeSpec.Ints("perm")], c =>
        {
            var perm = c.Ints("perm");
            if (perm.Length != c[0].Shape.Rank || perm.Order().Select((p, i) => p != i).Any(b => b))
                throw c.Error($"perm [{string.Join(", ", perm)}] is not a permutation of rank {c[0].Shape.Rank}");
            return [c[0] with { Shape = new Shape(perm.Select(p => c[0].Shape[(int)p])) }];
        }, l => l.Emit("Transpose", l.Inputs, new Dictionary<string, object> { ["perm"] = l.Node.Ints("perm") }));

        yield return new("unsqueeze", 1, 1, [AttributeSpec.Ints("axes")], c =>
        {
            var rank = c[0].Shape.Rank + c.Ints("axes").Length;
            var axes = c.Ints("axes").Select(a => a < 0 ? a + rank : a).ToHashSet();
            var dims = new List<Dim>();
            var source = 0;
            for (var i = 0; i < rank; i++) dims.Add(axes.Contains(i) ? Dim.Of(1) : c[0].Shape[source++]);
            return [c[0] with { Shape = new Shape(dims) }];
        }, l => l.Emit("Unsqueeze", [l.Input(0), l.Int64s("axes", l.Node.Ints("axes"))]));

        // x[start:end] along one axis, step 1; end past the dimension is clamped (Python slicing).
        yield return new("slice", 1, 1, [AttributeSpec.Int("axis"), AttributeSpec.Int("start"), AttributeSpec.Int("end")], c =>
        {
            var shape = c[0].Shape;
            var axis = shape.NormalizeAxis(c.Int("axis"));
            var (start, end) = (c.Int("start"), c.Int("end"));
            var dim = shape[axis];
            if (!dim.IsKnown)
            {
                if (start == 0 && end == long.MaxValue) return [c[0]];
                throw c.Error($"cannot slice symbolic dimension {dim}");
            }
            start = Math.Clamp(start < 0 ? start + dim.Size : start, 0, dim.Size);
            end = Math.Clamp(end < 0 ? end + dim.Size : end, start, dim.Size);
            return [c[0] with { Shape = shape.With(axis, end - start) }];
        }, l => l.Emit("Slice", [l.Input(0), l.Int64s("starts", [l.Node.Int("start")]), l.Int64s("ends", [l.Node.Int("end")]), l.Int64s("axes", [l.Node.Int("axis")])]));

        // split(x; axis, sizes): one output per size, consecutive pieces of a known axis (ONNX Split).
        yield return new("split", 1, 1, [AttributeSpec.Int("axis"), AttributeSpec.Ints("sizes")], c =>
        {
            var shape = c[0].Shape;
            var axis = shape.NormalizeAxis(c.Int("axis"));
            var sizes = c.Ints("sizes");
            if (sizes.Length == 0 || sizes.Any(s => s <= 0)) throw c.Error("sizes must be positive");
            if (!shape[axis].IsKnown || shape[axis].Size != sizes.Sum()) throw c.Error($"sizes must add up to dimension {shape[axis]}");
            return sizes.Select(s => c[0] with { Shape = shape.With(axis, s) }).ToArray();
        }, l => l.EmitOutputs("Split", [l.Input(0), l.Int64s("split", l.Node.Ints("sizes"))],
            l.Node.Outputs.Select((_, i) => (int?)i).ToArray(), new Dictionary<string, object> { ["axis"] = l.Node.Int("axis") }));

        yield return new("concat", 1, int.MaxValue, [AttributeSpec.Int("axis")], c =>
        {
            var dtype = c.SameDType();
            var first = c[0].Shape;
            var axis = first.NormalizeAxis(c.Int("axis"));
            var size = 0L;
            foreach (var input in c.Inputs)
            {
                if (input.Shape.Rank != first.Rank) throw c.Error("inputs have different ranks");
                for (var i = 0; i < first.Rank; i++)
                {
                    if (i != axis && input.Shape[i] != first[i]) throw c.Error($"dimension {i} differs");
                }
                if (!input.Shape[axis].IsKnown) throw c.Error("cannot concatenate along a symbolic dimension");
                size += input.Shape[axis].Size;
            }
            return [new TensorType(dtype, first.With(axis, size))];
        }, l => l.Emit("Concat", l.Inputs, new Dictionary<string, object> { ["axis"] = l.Node.Int("axis") }));

        // Broadcasts x against shape (1 keeps the input's dimension), as torch.expand and ONNX Expand.
        yield return new("expand", 1, 1, [AttributeSpec.Ints("shape")],
            c => [c[0] with { Shape = ShapeMath.Broadcast(c[0].Shape, Shape.Of(c.Ints("shape"))) }],
            l => l.Emit("Expand", [l.Input(0), l.Int64s("shape", l.Node.Ints("shape"))]));

        // gather(data, indices) along axis: embedding lookup.
        yield return new("gather", 2, 2, [AttributeSpec.Int("axis", 0)], c =>
        {
            if (c[1].DType is not (DType.I64 or DType.I32)) throw c.Error("indices must be i64 or i32");
            var data = c[0].Shape;
            var axis = data.NormalizeAxis(c.Int("axis"));
            var dims = data.Dims.Take(axis).Concat(c[1].Shape.Dims).Concat(data.Dims.Skip(axis + 1));
            return [new TensorType(c[0].DType, new Shape(dims))];
        }, l => l.Emit("Gather", l.Inputs, new Dictionary<string, object> { ["axis"] = l.Node.Int("axis") }));
    }
}
