using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Tests.Compile;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// The ai.kiln.Linear custom op inside real ONNX Runtime sessions: out = E[ids] · Wᵀ with both tensors
/// external initializers over native memory, against a double-precision product.
/// </summary>
public sealed class LinearKernelTests
{
    private const int Vocab = 23;

    public static TheoryData<int, int, int, int, int> Cases => new()
    {
        // k, n, batch, sequence, threads
        { 515, 1001, 1, 1, 2 },   // one row split over two threads
        { 515, 301, 2, 5, 2 },    // rank-3 input, several rows, split
        { 4103, 37, 1, 1, 3 },    // long row: four weight rows per pass
        { 64, 48, 1, 3, 2 },      // small: runs on the calling thread
        { 515, 301, 2, 5, 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Session_output_equals_the_reference_product(int k, int n, int batch, int sequence, int threads)
    {
        var e = LinearMathTests.Random(Vocab * k, 5);
        var w = LinearMathTests.Random(n * k, 6);
        var ids = Enumerable.Range(0, batch * sequence).Select(i => (long)(i * 7 % Vocab)).ToArray();

        var result = Run(Model(k, n, k), e, w, k, n, ids, [batch, sequence], threads);

        Assert.Equal([batch, sequence, n], result.Shape);
        var x = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
        LinearMathTests.AssertClose(LinearMathTests.Reference(x, w, ids.Length, n, k), result.Data, k);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Weights_in_pieces_give_the_product_with_their_concatenation(int threads)
    {
        // Pieces of 300, 77 and 501 rows: with several threads the part boundaries fall inside pieces.
        const int k = 515, rows = 6;
        int[] pieces = [300, 77, 501];
        var e = LinearMathTests.Random(Vocab * k, 11);
        var w = pieces.Select((n, i) => LinearMathTests.Random(n * k, 12 + i)).ToArray();
        var ids = Enumerable.Range(0, rows).Select(i => (long)(i * 5 % Vocab)).ToArray();

        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, ["batch", "sequence"]);
        g.AddExternalInitializer("E", DType.F32, [Vocab, k]);
        for (var i = 0; i < pieces.Length; i++) g.AddExternalInitializer($"W{i}", DType.F32, [pieces[i], k]);
        var x = g.AddNode("Gather", ["E", "ids"]);
        g.AddNode(LinearKernel.OpType, [x, "W0", "W1", "W2"], domain: LinearKernel.Domain, output: "out");
        g.AddOutput("out", DType.F32, ["batch", "sequence", pieces.Sum()]);

        using var eBuffer = NativeBuffer.Of<float>(e);
        var wBuffers = w.Select(piece => NativeBuffer.Of<float>(piece)).ToList();
        try
        {
            using var session = CompiledSession.Create(g.ToBytes(),
                [eBuffer.As("E", DType.F32, [Vocab, k]), .. wBuffers.Select((b, i) => b.As($"W{i}", DType.F32, [pieces[i], k]))],
                new SessionSettings(IntraOpThreads: threads));
            var result = session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, [2, rows / 2]) }, "out");

            Assert.Equal([2, rows / 2, pieces.Sum()], result.Shape);
            var xs = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
            LinearMathTests.AssertClose(LinearMathTests.Reference(xs, [.. w.SelectMany(p => p)], rows, pieces.Sum(), k), result.Data, k);
        }
        finally
        {
            foreach (var buffer in wBuffers) buffer.Dispose();
        }
    }

    [Fact]
    public void Concurrent_runs_of_one_session_each_get_their_own_product()
    {
        // The kernel keeps no state between calls: runs on several threads at once, each with other ids.
        const int k = 515, n = 1001;
        var e = LinearMathTests.Random(Vocab * k, 20);
        var w = LinearMathTests.Random(n * k, 21);
        using var eBuffer = NativeBuffer.Of<float>(e);
        using var wBuffer = NativeBuffer.Of<float>(w);
        using var session = CompiledSession.Create(Model(k, n, k),
            [eBuffer.As("E", DType.F32, [Vocab, k]), wBuffer.As("W", DType.F32, [n, k])], new SessionSettings(IntraOpThreads: 2));

        var results = new FloatTensor[8];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            results[i] = session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new([i, (i + 3) % Vocab], [1, 2]) }, "out"));

        for (var i = 0; i < results.Length; i++)
        {
            var x = new[] { i, (i + 3) % Vocab }.SelectMany(id => e.AsSpan(id * k, k).ToArray()).ToArray();
            LinearMathTests.AssertClose(LinearMathTests.Reference(x, w, 2, n, k), results[i].Data, k);
        }
    }

    [Fact]
    public void A_weight_of_the_wrong_width_fails_the_run_naming_the_op()
    {
        var (k, n) = (16, 4);
        var e = LinearMathTests.Random(Vocab * k, 7);
        var w = LinearMathTests.Random(n * (k + 1), 8);
        var error = Assert.Throws<KilnException>(() => Run(Model(k, n, k + 1), e, w, k, n, [1, 2], [1, 2], threads: 1, weightWidth: k + 1));
        Assert.Contains("ai.kiln.Linear: each W must be [n, k]", error.Message);
    }

    [Fact]
    public void The_model_imports_the_kiln_domain_only_when_it_uses_it()
    {
        var with = Onnx.ModelProto.Parser.ParseFrom(Model(8, 4, 8));
        Assert.Contains(with.OpsetImport, o => o.Domain == LinearKernel.Domain);
        var without = new OnnxGraphBuilder();
        Assert.DoesNotContain(Onnx.ModelProto.Parser.ParseFrom(without.ToBytes()).OpsetImport, o => o.Domain == LinearKernel.Domain);
    }

    private static byte[] Model(int k, int n, int weightWidth)
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, ["batch", "sequence"]);
        g.AddExternalInitializer("E", DType.F32, [Vocab, k]);
        g.AddExternalInitializer("W", DType.F32, [n, weightWidth]);
        var x = g.AddNode("Gather", ["E", "ids"]);
        g.AddNode(LinearKernel.OpType, [x, "W"], domain: LinearKernel.Domain, output: "out");
        g.AddOutput("out", DType.F32, ["batch", "sequence", n]);
        return g.ToBytes();
    }

    private static FloatTensor Run(byte[] model, float[] e, float[] w, int k, int n, long[] ids, long[] shape, int threads, int? weightWidth = null)
    {
        using var eBuffer = NativeBuffer.Of<float>(e);
        using var wBuffer = NativeBuffer.Of<float>(w);
        using var session = CompiledSession.Create(model,
            [eBuffer.As("E", DType.F32, [Vocab, k]), wBuffer.As("W", DType.F32, [n, weightWidth ?? k])],
            new SessionSettings(IntraOpThreads: threads));
        return session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, shape) }, "out");
    }
}
