using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Kiln.Graph;
using Onnx;

namespace Kiln.Compile;

/// <summary>
/// Emits an ONNX model in code: inputs, outputs, initializers and nodes, with unique generated
/// names. Node attributes are given as plain values: int or long, float or double, string,
/// long[] or int[], float[], string[], or a <see cref="TensorProto"/> (see <see cref="Tensor"/>).
/// </summary>
public sealed class OnnxGraphBuilder
{
    /// <summary>Opset of the default ONNX domain; ORT 1.31 runs every op Kiln lowers to at 23.</summary>
    public const long DefaultOpset = 23;

    /// <summary>Opset of the com.microsoft contrib domain.</summary>
    public const long MicrosoftOpset = 1;

    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>Kiln's own kernels (<see cref="Kernels.LinearKernel"/>), imported only by graphs that use them.</summary>
    public const string KilnDomain = Kernels.CustomOpKernel.Domain;

    public const long KilnOpset = 1;

    /// <summary>IR version 10: ORT 1.31 loads it with opset 23 (OpsetTests); OnnxSharp also writes 11.</summary>
    public const long IrVersion = 10;

    /// <summary>The external-data location of every <see cref="AddExternalInitializer"/> declaration.</summary>
    public const string ExternalLocation = ".";

    private readonly GraphProto _graph;
    private readonly ModelProto _model;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);
    private readonly List<string> _externalInitializers = [];

    public OnnxGraphBuilder(string graphName = "kiln", long opset = DefaultOpset)
    {
        _graph = new GraphProto { Name = graphName };
        _model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "kiln",
            Graph = _graph,
        };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = MicrosoftOpset });
    }

    /// <summary>Names declared by <see cref="AddExternalInitializer"/>, in order.</summary>
    public IReadOnlyList<string> ExternalInitializers => _externalInitializers;

    /// <summary>A name not used yet in this graph, built from <paramref name="hint"/>.</summary>
    public string UniqueName(string hint)
    {
        if (_names.Add(hint)) return hint;
        var n = _counters.GetValueOrDefault(hint);
        string name;
        do { name = $"{hint}_{++n}"; } while (!_names.Add(name));
        _counters[hint] = n;
        return name;
    }

    public string AddInput(string name, DType type, IReadOnlyList<OnnxDim> dims)
    {
        _graph.Input.Add(ValueInfo(Claim(name), type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="name"/>, which some node must produce, as a graph output.</summary>
    public void AddOutput(string name, DType type, IReadOnlyList<OnnxDim> dims) =>
        _graph.Output.Add(ValueInfo(name, type, dims));

    /// <summary>An initializer embedded in the model: for small buffers (shapes, axes, scalars).</summary>
    public string AddConstant(string name, DType type, long[] shape, ReadOnlySpan<byte> data)
    {
        _graph.Initializer.Add(Tensor(Claim(name), type, shape, data));
        return name;
    }

    /// <summary>A typed embedded initializer, e.g. <c>AddConstant("axes", [1], [-1L])</c>.</summary>
    public string AddConstant<T>(string name, long[] shape, ReadOnlySpan<T> values) where T : unmanaged =>
        AddConstant(name, OnnxTypes.Of<T>(), shape, MemoryMarshal.AsBytes(values));

    /// <summary>
    /// Declares an initializer whose data is not in the model: <see cref="CompiledSession"/> supplies
    /// it, without copying, from memory Kiln owns. Measured on ORT 1.31: the declaration must be
    /// external data at a location that exists (ORT checks at load), so it points at ".", the
    /// folder itself, which ORT never opens once the initializer is supplied and cannot read as
    /// data if it is not. A declaration without data loads only below about 128 bytes; embedded
    /// placeholder data would be read by constant folding instead of the supplied data.
    /// Consequence: no node that ORT can constant-fold (e.g. Transpose of a weight) may consume one;
    /// ORT then fails session creation ("Random-access reads require a regular file: .").
    /// </summary>
    public string AddExternalInitializer(string name, DType type, long[] shape)
    {
        var tensor = new TensorProto { Name = Claim(name), DataType = (int)type.ToOnnx(), DataLocation = TensorProto.Types.DataLocation.External };
        tensor.Dims.AddRange(shape);
        var length = shape.Aggregate((long)type.ByteSize(), (a, b) => a * b);
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = ExternalLocation });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "0" });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        _graph.Initializer.Add(tensor);
        _externalInitializers.Add(name);
        return name;
    }

    /// <summary>Adds a node with one output and returns the output's name (generated unless given).</summary>
    public string AddNode(string opType, IReadOnlyList<string> inputs, IReadOnlyDictionary<string, object>? attributes = null,
        string? domain = null, string? output = null) =>
        AddNode(opType, inputs, 1, attributes, domain, output == null ? null : [output])[0];

    /// <summary>
    /// Adds a node with <paramref name="outputCount"/> outputs and returns their names (generated
    /// unless given). An empty input name marks an omitted optional input, as in ONNX.
    /// </summary>
    public IReadOnlyList<string> AddNode(string opType, IReadOnlyList<string> inputs, int outputCount,
        IReadOnlyDictionary<string, object>? attributes = null, string? domain = null, IReadOnlyList<string>? outputNames = null)
    {
        if (outputNames != null && outputNames.Count != outputCount)
            throw new ArgumentException($"{outputNames.Count} output names for {outputCount} outputs", nameof(outputNames));
        var node = new NodeProto { OpType = opType, Name = UniqueName(opType), Domain = domain ?? "" };
        if (node.Domain == KilnDomain && _model.OpsetImport.All(o => o.Domain != KilnDomain))
            _model.OpsetImport.Add(new OperatorSetIdProto { Domain = KilnDomain, Version = KilnOpset });
        node.Input.AddRange(inputs);
        var outputs = new string[outputCount];
        for (var i = 0; i < outputCount; i++)
            // An empty name omits an optional output, as ONNX allows.
            outputs[i] = outputNames == null ? UniqueName(outputCount == 1 ? $"{node.Name}_out" : $"{node.Name}_out{i}")
                : outputNames[i].Length == 0 ? "" : Claim(outputNames[i]);
        node.Output.AddRange(outputs);
        if (attributes != null)
        {
            foreach (var (key, value) in attributes) node.Attribute.Add(Attribute(key, value));
        }
        _graph.Node.Add(node);
        return outputs;
    }

    /// <summary>A tensor value, e.g. for the "value" attribute of a Constant node.</summary>
    public static TensorProto Tensor(string name, DType type, long[] shape, ReadOnlySpan<byte> data)
    {
        var expected = shape.Aggregate((long)type.ByteSize(), (a, b) => a * b);
        if (data.Length != expected)
            throw new ArgumentException($"tensor {name}: {data.Length} bytes for shape [{string.Join(", ", shape)}] of {type.Name()} ({expected} bytes)", nameof(data));
        var tensor = new TensorProto { Name = name, DataType = (int)type.ToOnnx(), RawData = ByteString.CopyFrom(data) };
        tensor.Dims.AddRange(shape);
        return tensor;
    }

    /// <summary>A typed tensor value, e.g. <c>Tensor("v", [2], [1f, 2f])</c>.</summary>
    public static TensorProto Tensor<T>(string name, long[] shape, ReadOnlySpan<T> values) where T : unmanaged =>
        Tensor(name, OnnxTypes.Of<T>(), shape, MemoryMarshal.AsBytes(values));

    /// <summary>The model in ONNX's protobuf encoding.</summary>
    public byte[] ToBytes() => _model.ToByteArray();

    private string Claim(string name)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("a graph value needs a name", nameof(name));
        if (!_names.Add(name)) throw new ArgumentException($"graph value {name} is already defined", nameof(name));
        return name;
    }

    private static ValueInfoProto ValueInfo(string name, DType type, IReadOnlyList<OnnxDim> dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim.Symbol != null
                ? new TensorShapeProto.Types.Dimension { DimParam = dim.Symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = dim.Value!.Value });
        }
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)type.ToOnnx(), Shape = shape };
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }

    private static AttributeProto Attribute(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case int or long:
                a.Type = AttributeProto.Types.AttributeType.Int; a.I = Convert.ToInt64(value, CultureInfo.InvariantCulture); break;
            case float or double:
                a.Type = AttributeProto.Types.AttributeType.Float; a.F = Convert.ToSingle(value, CultureInfo.InvariantCulture); break;
            case string s:
                a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
            case long[] longs:
                a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(longs); break;
            case int[] ints:
                a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(ints.Select(i => (long)i)); break;
            case float[] floats:
                a.Type = AttributeProto.Types.AttributeType.Floats; a.Floats.AddRange(floats); break;
            case string[] strings:
                a.Type = AttributeProto.Types.AttributeType.Strings; a.Strings.AddRange(strings.Select(ByteString.CopyFromUtf8)); break;
            case TensorProto tensor:
                a.Type = AttributeProto.Types.AttributeType.Tensor; a.T = tensor; break;
            default:
                throw new ArgumentException($"attribute {name}: unsupported value type {value.GetType().Name}", nameof(value));
        }
        return a;
    }
}
