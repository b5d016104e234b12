using Kiln.Graph;

namespace Kiln.Compile;

/// <summary>What an op's lowering sees: the node to lower, the ONNX builder to emit into and the run's context.</summary>
public sealed class LoweringContext(OnnxGraphBuilder builder, Node node, int? context = null)
{
    public OnnxGraphBuilder Builder { get; } = builder;

    public Node Node { get; } = node;

    /// <summary>Positions the run uses at most (null: no bound); an op with per-position data builds no more than this.</summary>
    public int? Context { get; } = context;

    /// <summary><paramref name="positions"/> bounded by <see cref="Context"/>.</summary>
    public long Positions(long positions) => Context is { } context ? Math.Min(positions, context) : positions;

    /// <summary>ONNX names of the node's inputs (Kiln value names are kept).</summary>
    public string[] Inputs => Node.Inputs.Select(i => i.Name).ToArray();

    public string Input(int index) => Node.Inputs[index].Name;

    /// <summary>Emits the ONNX node that produces the Kiln node's (single) output.</summary>
    public void Emit(string opType, IReadOnlyList<string> inputs, IReadOnlyDictionary<string, object>? attributes = null, string? domain = null) =>
        Builder.AddNode(opType, inputs, attributes, domain, output: Node.Output.Name);

    /// <summary>
    /// Emits an ONNX node with several outputs; <paramref name="outputs"/> gives, for each ONNX output, the
    /// Kiln output index it produces, or null for an optional output that is not used.
    /// </summary>
    public void EmitOutputs(string opType, IReadOnlyList<string> inputs, IReadOnlyList<int?> outputs,
        IReadOnlyDictionary<string, object>? attributes = null, string? domain = null) =>
        Builder.AddNode(opType, inputs, outputs.Count, attributes, domain,
            outputs.Select(index => index is { } i ? Node.Outputs[i].Name : "").ToArray());

    /// <summary>Emits an intermediate ONNX node and returns its output's name.</summary>
    public string Temp(string opType, IReadOnlyList<string> inputs, IReadOnlyDictionary<string, object>? attributes = null, string? domain = null) =>
        Builder.AddNode(opType, inputs, attributes, domain);

    /// <summary>An embedded int64 vector, e.g. the shape input of Reshape.</summary>
    public string Int64s(string hint, long[] values) =>
        Builder.AddConstant<long>($"{Node.Outputs[0].Name}.{hint}", [values.Length], values);

    /// <summary>Emits the node's output as an embedded scalar of the given dtype.</summary>
    public void EmitScalar(DType dtype, double value)
    {
        byte[] bytes = dtype switch
        {
            DType.F32 => BitConverter.GetBytes((float)value),
            DType.F64 => BitConverter.GetBytes(value),
            DType.F16 => BitConverter.GetBytes((Half)value),
            DType.BF16 => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits((float)value) >> 16)),
            DType.I64 => BitConverter.GetBytes((long)value),
            DType.I32 => BitConverter.GetBytes((int)value),
            DType.Bool => [value != 0 ? (byte)1 : (byte)0],
            _ => throw new GraphException($"constant of dtype {dtype.Name()} cannot be lowered"),
        };
        Builder.AddConstant(Node.Output.Name, dtype, [], bytes);
    }
}
