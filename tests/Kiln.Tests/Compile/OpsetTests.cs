using Kiln.Compile;
using Kiln.Graph;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace Kiln.Tests.Compile;

/// <summary>Each ONNX op Kiln lowers to runs at opset 23 on ORT's CPU provider, with a tiny numeric check.</summary>
public sealed class OpsetTests
{
    private sealed record Input(DType Type, long[] Shape, Array Values);

    private sealed record Case(string Op, Input[] Inputs, long[] Shape, float[] Expected, Dictionary<string, object>? Attributes = null);

    private static Input F(long[] shape, params float[] v) => new(DType.F32, shape, v);
    private static Input L(long[] shape, params long[] v) => new(DType.I64, shape, v);
    private static Input Bo(long[] shape, params bool[] v) => new(DType.Bool, shape, v);
    private static Dictionary<string, object> A(string name, object value) => new() { [name] = value };

    private static readonly float Ln2 = MathF.Log(2), Ln3 = MathF.Log(3);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["Gather"] = new("Gather", [F([3, 2], 1, 2, 3, 4, 5, 6), L([2], 2, 0)], [2, 2], [5, 6, 1, 2]),
        ["MatMul"] = new("MatMul", [F([2, 2], 1, 2, 3, 4), F([2, 2], 5, 6, 7, 8)], [2, 2], [19, 22, 43, 50]),
        ["Gemm transB"] = new("Gemm", [F([2, 2], 1, 2, 3, 4), F([2, 2], 5, 6, 7, 8)], [2, 2], [17, 23, 39, 53], A("transB", 1L)),
        ["Add broadcast"] = new("Add", [F([2, 1], 1, 2), F([2], 10, 20)], [2, 2], [11, 21, 12, 22]),
        ["Mul"] = new("Mul", [F([2], 2, 3), F([2], 4, 5)], [2], [8, 15]),
        ["Sub"] = new("Sub", [F([2], 5, 3), F([2], 1, 4)], [2], [4, -1]),
        ["Div"] = new("Div", [F([2], 1, 3), F([2], 2, 4)], [2], [0.5f, 0.75f]),
        ["Neg"] = new("Neg", [F([2], 1, -2)], [2], [-1, 2]),
        ["Pow"] = new("Pow", [F([2], 2, 3), F([2], 3, 2)], [2], [8, 9]),
        ["ReduceMean axes input"] = new("ReduceMean", [F([2, 2], 1, 2, 3, 4), L([1], -1)], [2, 1], [1.5f, 3.5f]),
        ["Sqrt"] = new("Sqrt", [F([2], 4, 9)], [2], [2, 3]),
        ["Reciprocal"] = new("Reciprocal", [F([2], 2, 4)], [2], [0.5f, 0.25f]),
        ["Softmax last axis"] = new("Softmax", [F([2, 2], 0, Ln3, 5, 5)], [2, 2], [0.25f, 0.75f, 0.5f, 0.5f], A("axis", -1L)),
        ["Reshape 0 and -1"] = new("Reshape", [F([2, 3, 1], 1, 2, 3, 4, 5, 6), L([2], 0, -1)], [2, 3], [1, 2, 3, 4, 5, 6]),
        ["Transpose"] = new("Transpose", [F([2, 3], 1, 2, 3, 4, 5, 6)], [3, 2], [1, 4, 2, 5, 3, 6], A("perm", new long[] { 1, 0 })),
        ["Unsqueeze axes input"] = new("Unsqueeze", [F([2], 1, 2), L([1], 0)], [1, 2], [1, 2]),
        ["Concat"] = new("Concat", [F([1, 2], 1, 2), F([1, 1], 3)], [1, 3], [1, 2, 3], A("axis", 1L)),
        ["Slice inputs"] = new("Slice", [F([5], 0, 1, 2, 3, 4), L([1], 1), L([1], -1), L([1], 0)], [3], [1, 2, 3]),
        ["Cos"] = new("Cos", [F([2], 0, MathF.PI)], [2], [1, -1]),
        ["Sin"] = new("Sin", [F([2], 0, MathF.PI / 2)], [2], [0, 1]),
        ["Cast int64 to float"] = new("Cast", [L([2], 3, -4)], [2], [3, -4], A("to", 1L)),
        ["Where"] = new("Where", [Bo([2], true, false), F([2], 1, 2), F([2], 3, 4)], [2], [1, 4]),
        ["LessOrEqual"] = new("LessOrEqual", [F([3], 1, 2, 3), F([3], 2, 2, 2)], [3], [1, 1, 0]),
        ["Greater"] = new("Greater", [F([3], 1, 2, 3), F([3], 2, 2, 2)], [3], [0, 0, 1]),
        ["Expand"] = new("Expand", [F([2, 1], 7, 8), L([2], 2, 3)], [2, 3], [7, 7, 7, 8, 8, 8]),
        ["Sigmoid"] = new("Sigmoid", [F([2], 0, Ln3)], [2], [0.5f, 0.75f]),
        ["Tanh"] = new("Tanh", [F([2], 0, Ln2)], [2], [0, 0.6f]),
        ["Erf"] = new("Erf", [F([2], 0, 1)], [2], [0, 0.84270079f]),
        ["Equal int64"] = new("Equal", [L([2], 1, 2), L([2], 1, 3)], [2], [1, 0]),
        ["Range int64"] = new("Range", [L([], 1), L([], 7), L([], 2)], [3], [1, 3, 5]),
        ["Shape"] = new("Shape", [F([2, 3], 0, 0, 0, 0, 0, 0)], [2], [2, 3]),
        // (x - 2.5) / sqrt(1.25 + 1e-5) * scale + bias.
        ["LayerNormalization"] = new("LayerNormalization", [F([1, 4], 1, 2, 3, 4), F([4], 2, 1, 1, 1), F([4], 0, 0, 0, 1)], [1, 4],
            [-2.6832708f, -0.4472118f, 0.4472118f, 2.3416354f], new() { ["axis"] = -1L, ["epsilon"] = 1e-5f, ["stash_type"] = 1L }),
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
        ["Gelu tanh"] = new("Gelu", [F([3], 0, 1, -2)], [3], [0, 0.8411920f, -0.0454023f], A("approximate", "tanh")),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void OpRunsAtOpset23(string name)
    {
        var c = Cases[name];
        var g = new OnnxGraphBuilder();
        var inputs = c.Inputs.Select((input, i) => g.AddConstant($"in{i}", input.Type, input.Shape, Bytes(input))).ToList();
        var y = g.AddNode(c.Op, inputs, c.Attributes);
        // Integer and boolean results are compared as floats.
        if (!ProducesFloat(c)) y = g.AddNode("Cast", [y], A("to", 1L));
        g.AddNode("Identity", [y], output: "y");
        g.AddOutput("y", DType.F32, [.. c.Shape.Select(d => (OnnxDim)d)]);

        // No graph optimization: the kernels run instead of the constant folder.
        using var session = CompiledSession.Create(g.ToBytes(), [], new SessionSettings(IntraOpThreads: 1, Optimization: GraphOptimizationLevel.ORT_DISABLE_ALL));
        var result = session.Run(new Dictionary<string, Int64Tensor>(), "y");

        Assert.Equal(c.Shape, result.Shape);
        Assert.Equal(c.Expected.Length, result.Data.Length);
        for (var i = 0; i < c.Expected.Length; i++) Assert.Equal(c.Expected[i], result.Data[i], 1e-6f);
    }

    [Fact]
    public void EveryOpIsCovered()
    {
        string[] required =
        [
            "Gather", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Neg", "Pow", "ReduceMean", "Sqrt", "Reciprocal",
            "Softmax", "Reshape", "Transpose", "Unsqueeze", "Concat", "Slice", "Cos", "Sin", "Cast", "Where",
            "LessOrEqual", "Greater", "Expand", "Sigmoid", "Tanh", "Erf", "Equal", "Range", "Shape", "LayerNormalization", "Gelu",
        ];
        Assert.Empty(required.Except(Cases.Values.Select(c => c.Op)));
    }

    private static bool ProducesFloat(Case c) => c.Op switch
    {
        "Equal" or "LessOrEqual" or "Greater" or "Shape" => false,
        "Range" => c.Inputs[0].Type.IsFloat(),
        _ => true,
    };

    private static byte[] Bytes(Input input) => input.Values switch
    {
        float[] f => [.. f.SelectMany(BitConverter.GetBytes)],
        long[] l => [.. l.SelectMany(BitConverter.GetBytes)],
        bool[] b => [.. b.Select(v => v ? (byte)1 : (byte)0)],
        _ => throw new ArgumentException(input.Values.GetType().Name),
    };
}
