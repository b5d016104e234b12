using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Tests.Compile;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// ai.kiln.LinearInt8, LinearInt4 and LinearInt4Sym inside real ONNX Runtime sessions: out = E[ids] · dequantize(W)ᵀ
/// with E and the packed W external initializers over native memory.
/// </summary>
public sealed class QuantizedLinearKernelTests
{
    private const int Vocab = 23;

    public static TheoryData<QuantScheme, int, int, int, int, int> Cases()
    {
        var data = new TheoryData<QuantScheme, int, int, int, int, int>();
        foreach (var scheme in Enum.GetValues<QuantScheme>())
        {
            // k, n, batch, sequence, threads
            data.Add(scheme, 515, 1001, 1, 1, 2);   // one row split over two threads
            data.Add(scheme, 515, 301, 2, 5, 3);    // rank-3 input, several rows, parts cutting tiles
            data.Add(scheme, 172, 37, 1, 1, 1);     // k not a multiple of 32, calling thread
            data.Add(scheme, 4100, 67, 1, 3, 2);
            data.Add(scheme, 300, 45, 2, 17, 2);    // 34 rows: int8 through float panels
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Session_output_is_the_product_with_the_dequantized_weight(QuantScheme scheme, int k, int n, int batch, int sequence, int threads)
    {
        var e = LinearMathTests.Random(Vocab * k, 5);
        var (packed, dequantized) = QuantizedProduct.Pack(LinearMathTests.Random(n * k, 6), n, k, scheme);
        var ids = Enumerable.Range(0, batch * sequence).Select(i => (long)(i * 7 % Vocab)).ToArray();

        var result = Run(scheme, e, packed, k, n, scheme.RowBytes(k), ids, [batch, sequence], threads);

        Assert.Equal([batch, sequence, n], result.Shape);
        var x = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
        QuantizedProduct.AssertClose(x, dequantized, result.Data, ids.Length, n, k, 0, n);
    }

    [Fact]
    public void A_packed_weight_of_the_wrong_width_fails_the_run_naming_the_op_and_the_expected_shape()
    {
        const int k = 64, n = 4;
        var e = LinearMathTests.Random(Vocab * k, 7);
        var (packed, _) = QuantizedProduct.Pack(LinearMathTests.Random(n * 96, 8), n, 96, QuantScheme.Int8);
        var error = Assert.Throws<KilnException>(() => Run(QuantScheme.Int8, e, packed, k, n, QuantScheme.Int8.RowBytes(96), [1, 2], [1, 2], threads: 1));
        Assert.Contains("ai.kiln.LinearInt8: W must be [n, 68]", error.Message);
    }

    private static FloatTensor Run(QuantScheme scheme, float[] e, byte[] packed, int k, int n, long rowBytes, long[] ids, long[] shape, int threads)
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, ["batch", "sequence"]);
        g.AddExternalInitializer("E", DType.F32, [Vocab, k]);
        g.AddExternalInitializer("W", DType.U8, [n, rowBytes]);
        var x = g.AddNode("Gather", ["E", "ids"]);
        g.AddNode(QuantizedLinearKernel.OpType(scheme), [x, "W"], domain: LinearKernel.Domain, output: "out");
        g.AddOutput("out", DType.F32, ["batch", "sequence", n]);
        using var eBuffer = NativeBuffer.Of<float>(e);
        using var wBuffer = NativeBuffer.Of<byte>(packed);
        using var session = CompiledSession.Create(g.ToBytes(),
            [eBuffer.As("E", DType.F32, [Vocab, k]), wBuffer.As("W", DType.U8, [n, rowBytes])],
            new SessionSettings(IntraOpThreads: threads));
        return session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, shape) }, "out");
    }
}
