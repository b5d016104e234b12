using Kiln.Graph;

namespace Kiln.Compile;

/// <summary>
/// Lowers a graph to an ONNX model: inputs and outputs keep their names and symbolic dimensions,
/// buffers are embedded, parameters are declared without data (bound at session creation), and each
/// node is lowered by its op's own lowering. <paramref name="context"/> (null: the graph's own sizes)
/// bounds per-position data such as the rotary tables to the positions the run will use.
/// </summary>
public static class GraphLowering
{
    public static byte[] ToOnnx(ModelGraph graph, int? context = null)
    {
        var builder = new OnnxGraphBuilder();
        foreach (var input in graph.Inputs) builder.AddInput(input.Name, input.DType, Dims(input.Shape));
        foreach (var parameter in graph.Parameters)
            builder.AddExternalInitializer(parameter.Name, parameter.Value.DType, parameter.Value.Shape.ToSizes());
        foreach (var buffer in graph.Buffers)
            builder.AddConstant(buffer.Name, buffer.Value.DType, buffer.Value.Shape.ToSizes(), buffer.Data);
        foreach (var node in graph.Nodes)
            graph.Registry.Get(node.Op).Lower(new LoweringContext(builder, node, context));
        foreach (var output in graph.Outputs) builder.AddOutput(output.Name, output.DType, Dims(output.Shape));
        return builder.ToBytes();
    }

    private static OnnxDim[] Dims(Shape shape) =>
        shape.Dims.Select(d => d.IsKnown ? OnnxDim.Fixed(d.Size) : OnnxDim.Symbolic(d.Symbol!)).ToArray();
}
