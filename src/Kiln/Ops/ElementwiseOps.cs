using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>Elementwise ops: unary math, broadcasting binary math, comparisons, select, cast, constants.</summary>
public static class ElementwiseOps
{
    public static IEnumerable<OpDefinition> All()
    {
        foreach (var name in new[] { "neg", "sqrt", "rsqrt", "exp", "cos", "sin", "sigmoid", "silu", "tanh" })
            yield return new(name, 1, 1, [], c => [c[0]]);

        // approximate: "none" (erf) or "tanh" (GPT-2's gelu_new).
        yield return new("gelu", 1, 1, [AttributeSpec.String("approximate", "none")], c => [c[0]]);

        foreach (var name in new[] { "add", "sub", "mul", "div", "pow" })
            yield return new(name, 2, 2, [], c => [new TensorType(c.SameDType(), ShapeMath.Broadcast(c[0].Shape, c[1].Shape))]);

        foreach (var name in new[] { "less", "less_equal", "greater", "greater_equal", "equal" })
            yield return new(name, 2, 2, [], c =>
            {
                c.SameDType();
                return [new TensorType(DType.Bool, ShapeMath.Broadcast(c[0].Shape, c[1].Shape))];
            });

        yield return new("and", 2, 2, [], c =>
        {
            if (c[0].DType != DType.Bool || c[1].DType != DType.Bool) throw c.Error("inputs must be bool");
            return [new TensorType(DType.Bool, ShapeMath.Broadcast(c[0].Shape, c[1].Shape))];
        });

        // where(condition, x, y): x where condition holds, else y.
        yield return new("where", 3, 3, [], c =>
        {
            if (c[0].DType != DType.Bool) throw c.Error("condition must be bool");
            if (c[1].DType != c[2].DType) throw c.Error("branches have different dtypes");
            return [new TensorType(c[1].DType, ShapeMath.Broadcast([c[0].Shape, c[1].Shape, c[2].Shape]))];
        });

        yield return new("cast", 1, 1, [AttributeSpec.String("to")], c => [new TensorType(c.DTypeAttribute("to"), c[0].Shape)]);

        // A scalar constant; the value is stored as a double and converted to dtype.
        yield return new("constant", 0, 0, [AttributeSpec.Float("value"), AttributeSpec.String("dtype")],
            c => [new TensorType(c.DTypeAttribute("dtype"), Shape.Scalar)]);
    }
}
