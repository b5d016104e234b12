using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Ops;

/// <summary>Elementwise ops: unary math, broadcasting binary math, comparisons, select, cast, constants.</summary>
public static class ElementwiseOps
{
    private static readonly Dictionary<string, string> Unary = new()
    {
        ["neg"] = "Neg", ["sqrt"] = "Sqrt", ["exp"] = "Exp", ["cos"] = "Cos", ["sin"] = "Sin", ["sigmoid"] = "Sigmoid", ["tanh"] = "Tanh",
    };

    private static readonly Dictionary<string, string> Binary = new()
    {
        ["add"] = "Add", ["sub"] = "Sub", ["mul"] = "Mul", ["div"] = "Div", ["pow"] = "Pow",
    };

    private static readonly Dictionary<string, string> Comparisons = new()
    {
        ["less"] = "Less", ["less_equal"] = "LessOrEqual", ["greater"] = "Greater", ["greater_equal"] = "GreaterOrEqual", ["equal"] = "Equal",
    };

    public static IEnumerable<OpDefinition> All()
    {
        foreach (var (name, onnx) in Unary)
            yield return new(name, 1, 1, [], c => [c[0]], l => l.Emit(onnx, l.Inputs));

        yield return new("rsqrt", 1, 1, [], c => [c[0]], l => l.Emit("Reciprocal", [l.Temp("Sqrt", l.Inputs)]));
        yield return new("silu", 1, 1, [], c => [c[0]], l => l.Emit("Mul", [l.Input(0), l.Temp("Sigmoid", l.Inputs)]));

        // approximate: "none" (erf) or "tanh" (GPT-2's gelu_new); ONNX Gelu (opset 20) has both.
        yield return new("gelu", 1, 1, [AttributeSpec.String("approximate", "none")], c => [c[0]],
            l => l.Emit("Gelu", l.Inputs, new Dictionary<string, object> { ["approximate"] = l.Node.String("approximate") }));

        foreach (var (name, onnx) in Binary)
            yield return new(name, 2, 2, [], c => [new TensorType(c.SameDType(), ShapeMath.Broadcast(c[0].Shape, c[1].Shape))],
                l => l.Emit(onnx, l.Inputs));

        foreach (var (name, onnx) in Comparisons)
            yield return new(name, 2, 2, [], c =>
            {
                c.SameDType();
                return [new TensorType(DType.Bool, ShapeMath.Broadcast(c[0].Shape, c[1].Shape))];
            }, l => l.Emit(onnx, l.Inputs));

        yield return new("and", 2, 2, [], c =>
        {
            if (c[0].DType != DType.Bool || c[1].DType != DType.Bool) throw c.Error("inputs must be bool");
            return [new TensorType(DType.Bool, ShapeMath.Broadcast(c[0].Shape, c[1].Shape))];
        }, l => l.Emit("And", l.Inputs));

        // where(condition, x, y): x where condition holds, else y.
        yield return new("where", 3, 3, [], c =>
        {
            if (c[0].DType != DType.Bool) throw c.Error("condition must be bool");
            if (c[1].DType != c[2].DType) throw c.Error("branches have different dtypes");
            return [new TensorType(c[1].DType, ShapeMath.Broadcast([c[0].Shape, c[1].Shape, c[2].Shape]))];
        }, l => l.Emit("Where", l.Inputs));

        yield return new("cast", 1, 1, [AttributeSpec.String("to")], c => [new TensorType(c.DTypeAttribute("to"), c[0].Shape)],
            l => l.Emit("Cast", l.Inputs, new Dictionary<string, object> { ["to"] = (int)l.Node.Output.DType.ToOnnx() }));

        // A scalar constant; the value is stored as a double and converted to dtype.
        yield return new("constant", 0, 0, [AttributeSpec.Float("value"), AttributeSpec.String("dtype")],
            c => [new TensorType(c.DTypeAttribute("dtype"), Shape.Scalar)],
            l => l.EmitScalar(l.Node.Output.DType, l.Node.Float("value")));
    }
}
