using Kiln.Compile;
using Kiln.Graph;
using Xunit;

namespace Kiln.Tests.Compile;

public sealed class CompiledSessionTests
{
    // Embedding E [5, 4], weight W [4, 3], bias b [3]: out = E[ids] @ W + b.
    private static readonly float[] E = [.. Enumerable.Range(0, 20).Select(i => (float)i)];
    private static readonly float[] W = [1, 0, 2, 0, 1, -1, 3, 0, 0.5f, 0, -2, 0.25f];
    private static readonly float[] B = [0.5f, -1, 2];

    /// <summary>The tiny model; E and W external (data from native memory) or embedded.</summary>
    private static byte[] TinyModel(bool external, OnnxDim batch)
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, [batch]);
        if (external)
        {
            g.AddExternalInitializer("E", DType.F32, [5, 4]);
            g.AddExternalInitializer("W", DType.F32, [4, 3]);
        }
        else
        {
            g.AddConstant<float>("E", [5, 4], E);
            g.AddConstant<float>("W", [4, 3], W);
        }
        g.AddConstant<float>("b", [3], B);
        var x = g.AddNode("Gather", ["E", "ids"]);
        var y = g.AddNode("MatMul", [x, "W"]);
        g.AddNode("Add", [y, "b"], output: "out");
        g.AddOutput("out", DType.F32, [batch, 3]);
        return g.ToBytes();
    }

    private static float[] Expected(long[] ids) =>
    [
        .. ids.SelectMany(id => Enumerable.Range(0, 3).Select(j =>
            Enumerable.Range(0, 4).Sum(k => E[id * 4 + k] * W[k * 3 + j]) + B[j])),
    ];

    private static FloatTensor RunTiny(byte[] model, long[] ids, SessionSettings? settings = null)
    {
        using var e = NativeBuffer.Of<float>(E);
        using var w = NativeBuffer.Of<float>(W);
        using var session = CompiledSession.Create(model, [e.As("E", DType.F32, [5, 4]), w.As("W", DType.F32, [4, 3])], settings);
        return session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, [ids.Length]) }, "out");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ExternalInitializersFromNativeMemoryGiveHandComputedOutput(bool prepacking)
    {
        long[] ids = [3, 0, 4];
        var result = RunTiny(TinyModel(external: true, "batch"), ids, new SessionSettings(IntraOpThreads: 1, Prepacking: prepacking));
        Assert.Equal([3, 3], result.Shape);
        Assert.Equal(Expected(ids), result.Data);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SpinningOnOrOffGivesHandComputedOutput(bool spinning)
    {
        long[] ids = [2, 4, 1];
        var result = RunTiny(TinyModel(external: true, "batch"), ids, new SessionSettings(IntraOpThreads: 2, Spinning: spinning));
        Assert.Equal(Expected(ids), result.Data);
    }

    [Fact]
    public void ExternalAndEmbeddedWeightsGiveTheSameOutput()
    {
        long[] ids = [1, 2, 1, 4];
        var external = RunTiny(TinyModel(external: true, "batch"), ids);
        using var embedded = CompiledSession.Create(TinyModel(external: false, "batch"), []);
        var reference = embedded.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, [4]) }, "out");
        Assert.Equal(reference.Shape, external.Shape);
        Assert.Equal(reference.Data, external.Data);
    }

    [Fact]
    public void SymbolicDimTakesAnySizeAndFixedDimOnlyItsOwn()
    {
        var symbolic = TinyModel(external: true, "batch");
        Assert.Equal(Expected([2]), RunTiny(symbolic, [2]).Data);
        Assert.Equal(Expected([0, 1, 2, 3, 4]), RunTiny(symbolic, [0, 1, 2, 3, 4]).Data);

        var fixedTwo = TinyModel(external: true, 2);
        Assert.Equal(Expected([4, 1]), RunTiny(fixedTwo, [4, 1]).Data);
        var e = Assert.Throws<KilnException>(() => RunTiny(fixedTwo, [4, 1, 0]));
        Assert.Contains("failed to run", e.Message);
    }

    [Fact]
    public void UnknownOpTypeIsAClearKilnException()
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("x", DType.I64, [2]);
        g.AddNode("NoSuchOp", ["x"], output: "y");
        g.AddOutput("y", DType.F32, [2]);
        var e = Assert.Throws<KilnException>(() => CompiledSession.Create(g.ToBytes(), []));
        Assert.StartsWith("ONNX Runtime could not create a session for the model: ", e.Message);
        Assert.Contains("NoSuchOp", e.Message);
    }

    [Fact]
    public void MissingExtraOrMisSizedInitializersAreNamed()
    {
        var model = TinyModel(external: true, "batch");
        using var e = NativeBuffer.Of<float>(E);
        using var w = NativeBuffer.Of<float>(W);

        var missing = Assert.Throws<KilnException>(() => CompiledSession.Create(model, [e.As("E", DType.F32, [5, 4])]));
        Assert.Equal("external initializers declared by the model but not supplied: W", missing.Message);

        var extra = Assert.Throws<KilnException>(() => CompiledSession.Create(model,
            [e.As("E", DType.F32, [5, 4]), w.As("W", DType.F32, [4, 3]), w.As("V", DType.F32, [4, 3])]));
        Assert.Equal("supplied initializers that the model does not declare external: V", extra.Message);

        var misSized = Assert.Throws<KilnException>(() => CompiledSession.Create(model, [e.As("E", DType.F32, [5, 4]), w.As("W", DType.F32, [4, 4])]));
        Assert.Contains("external initializer W: 48 bytes for shape [4, 4]", misSized.Message);
    }

    [Fact]
    public void ExternalInitializerFeedingAFoldableNodeFailsAtCreationInsteadOfComputingWrongly()
    {
        // ORT's constant folder reads the declaration, not the supplied data: Transpose(W) cannot be folded.
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, [1]);
        g.AddExternalInitializer("W", DType.F32, [4, 3]);
        var wt = g.AddNode("Transpose", ["W"], new Dictionary<string, object> { ["perm"] = new long[] { 1, 0 } });
        g.AddNode("Gather", [wt, "ids"], output: "out");
        g.AddOutput("out", DType.F32, [1, 4]);
        using var w = NativeBuffer.Of<float>(W);
        var folding = Assert.Throws<KilnException>(() => CompiledSession.Create(g.ToBytes(), [w.As("W", DType.F32, [4, 3])]));
        Assert.StartsWith("ONNX Runtime could not create a session", folding.Message);

        using var session = CompiledSession.Create(g.ToBytes(), [w.As("W", DType.F32, [4, 3])],
            new SessionSettings(Optimization: Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL));
        Assert.Equal([W[1], W[4], W[7], W[10]], session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new([1], [1]) }, "out").Data);
    }

    [Fact]
    public void GeneratedNamesAreUniqueAndTakenNamesAreRefused()
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("x", DType.F32, [2]);
        var a = g.AddNode("Neg", ["x"]);
        var b = g.AddNode("Neg", [a]);
        Assert.NotEqual(a, b);
        Assert.Throws<ArgumentException>(() => g.AddNode("Neg", ["x"], output: a));
        Assert.Throws<ArgumentException>(() => g.AddInput("x", DType.F32, [2]));
        Assert.Equal(["n_1", "n_2"], g.AddNode("Split", ["x"], 2, new Dictionary<string, object> { ["num_outputs"] = 2L }, outputNames: ["n_1", "n_2"]));
    }
}
