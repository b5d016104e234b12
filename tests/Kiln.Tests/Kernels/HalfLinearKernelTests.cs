using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Tests.Compile;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// ai.kiln.Linear over bf16 and f16 weight initializers inside real ONNX Runtime sessions: out = E[ids] · Wᵀ
/// with float32 E, against a double-precision product over the exact 16-bit values; every f16 subnormal
/// read exactly on ORT's threads; weights in pieces;
/// and the op's own errors for a weight type it does not read and for pieces of different types.
/// </summary>
public sealed class HalfLinearKernelTests
{
    private const int Vocab = 23;

    public static TheoryData<HalfLinearMathTests.Format, int, int, int, int> Cases()
    {
        var data = new TheoryData<HalfLinearMathTests.Format, int, int, int, int>();
        foreach (var format in Enum.GetValues<HalfLinearMathTests.Format>())
        {
            // k, n, rows, threads
            data.Add(format, 515, 1001, 1, 2);   // one row split over two threads
            data.Add(format, 515, 301, 10, 2);   // several rows, split
            data.Add(format, 4103, 37, 1, 3);    // long row: four weight rows per pass
            data.Add(format, 4103, 37, 7, 1);    // long rows, several
            data.Add(format, 64, 48, 3, 2);      // small: runs on the calling thread
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Session_output_equals_the_reference_product(HalfLinearMathTests.Format format, int k, int n, int rows, int threads)
    {
        var e = LinearMathTests.Random(Vocab * k, 5);
        var w = HalfLinearMathTests.Narrow(format, LinearMathTests.Random(n * k, 6));
        var ids = Enumerable.Range(0, rows).Select(i => (long)(i * 7 % Vocab)).ToArray();

        var result = Run(e, k, [(WeightType(format), w, n)], ids, threads);

        Assert.Equal([1, rows, n], result.Shape);
        var x = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
        LinearMathTests.AssertClose(LinearMathTests.Reference(x, HalfLinearMathTests.Widen(format, w), rows, n, k), result.Data, k);
    }

    [Theory]
    [InlineData(HalfLinearMathTests.Format.BFloat16, 1)]
    [InlineData(HalfLinearMathTests.Format.BFloat16, 3)]
    [InlineData(HalfLinearMathTests.Format.Float16, 2)]
    public void Weights_in_pieces_give_the_product_with_their_concatenation(HalfLinearMathTests.Format format, int threads)
    {
        const int k = 515, rows = 6;
        int[] pieces = [300, 77, 501];
        var e = LinearMathTests.Random(Vocab * k, 11);
        var w = pieces.Select((n, i) => HalfLinearMathTests.Narrow(format, LinearMathTests.Random(n * k, 12 + i))).ToArray();
        var ids = Enumerable.Range(0, rows).Select(i => (long)(i * 5 % Vocab)).ToArray();

        var result = Run(e, k, [.. pieces.Select((n, i) => (WeightType(format), w[i], n))], ids, threads);

        Assert.Equal([1, rows, pieces.Sum()], result.Shape);
        var x = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
        var all = w.SelectMany(p => HalfLinearMathTests.Widen(format, p)).ToArray();
        LinearMathTests.AssertClose(LinearMathTests.Reference(x, all, rows, pieces.Sum(), k), result.Data, k);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(3, 2)]
    public void Subnormal_f16_weights_are_read_exactly_in_a_session(int rows, int threads)
    {
        // Every f16 pattern with exponent 0 (±0 and the 2,046 subnormals), one per weight row at column
        // j % k, the rest of the row zero; x is a row of ones, so out[j] is weight j's value itself, on ORT's
        // threads and the one-row (rows = 1) or converted-block (rows = 3) path.
        const int k = 51;
        var patterns = Enumerable.Range(0, 0x400).SelectMany(m => new[] { (ushort)m, (ushort)(0x8000 | m) }).ToArray();
        var n = patterns.Length;
        var w = new ushort[n * k];
        for (var j = 0; j < n; j++) w[j * k + j % k] = patterns[j];
        var e = LinearMathTests.Random(Vocab * k, 13);
        Array.Fill(e, 1f, 0, k);

        var result = Run(e, k, [(DType.F16, w, n)], new long[rows], threads);

        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < n; j++)
            {
                var exact = (float)BitConverter.UInt16BitsToHalf(patterns[j]);
                Assert.True(exact == result.Data[r * n + j], $"row {r}, pattern 0x{patterns[j]:X4}: read {result.Data[r * n + j]}, exact {exact}");
            }
        }
    }

    [Fact]
    public void Pieces_of_different_types_fail_the_run_naming_the_op()
    {
        const int k = 16;
        var e = LinearMathTests.Random(Vocab * k, 7);
        var bf16 = HalfLinearMathTests.Narrow(HalfLinearMathTests.Format.BFloat16, LinearMathTests.Random(4 * k, 8));
        var f16 = HalfLinearMathTests.Narrow(HalfLinearMathTests.Format.Float16, LinearMathTests.Random(4 * k, 9));
        var error = Assert.Throws<KilnException>(() => Run(e, k, [(DType.BF16, bf16, 4), (DType.F16, f16, 4)], [1, 2], 1));
        Assert.Contains("ai.kiln.Linear: every W must have one element type; W1 is bfloat16, W2 is float16", error.Message);
    }

    [Fact]
    public void A_weight_type_the_kernel_does_not_read_fails_the_run_naming_the_op()
    {
        const int k = 16;
        var e = LinearMathTests.Random(Vocab * k, 7);
        var ints = Enumerable.Range(0, 4 * k).Select(i => (ushort)i).ToArray();
        var error = Assert.Throws<KilnException>(() => Run(e, k, [(DType.I16, ints, 4)], [1, 2], 1));
        Assert.Contains("ai.kiln.Linear: W must be float, float16 or bfloat16; got element type 5", error.Message);
    }

    private static DType WeightType(HalfLinearMathTests.Format format) =>
        format == HalfLinearMathTests.Format.BFloat16 ? DType.BF16 : DType.F16;

    // out = Gather(E, ids) · [W1; W2; ...]ᵀ with every tensor an external initializer over native memory.
    private static FloatTensor Run(float[] e, int k, (DType DType, ushort[] Bits, int N)[] weights, long[] ids, int threads)
    {
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, ["batch", "sequence"]);
        g.AddExternalInitializer("E", DType.F32, [Vocab, k]);
        for (var i = 0; i < weights.Length; i++) g.AddExternalInitializer($"W{i}", weights[i].DType, [weights[i].N, k]);
        var x = g.AddNode("Gather", ["E", "ids"]);
        g.AddNode(LinearKernel.OpType, [x, .. weights.Select((_, i) => $"W{i}")], domain: LinearKernel.Domain, output: "out");
        g.AddOutput("out", DType.F32, ["batch", "sequence", weights.Sum(w => w.N)]);

        using var eBuffer = NativeBuffer.Of<float>(e);
        var wBuffers = weights.Select(w => NativeBuffer.Of<ushort>(w.Bits)).ToList();
        try
        {
            using var session = CompiledSession.Create(g.ToBytes(),
                [eBuffer.As("E", DType.F32, [Vocab, k]), .. wBuffers.Select((b, i) => b.As($"W{i}", weights[i].DType, [weights[i].N, k]))],
                new SessionSettings(IntraOpThreads: threads));
            return session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, [1, ids.Length]) }, "out");
        }
        finally
        {
            foreach (var buffer in wBuffers) buffer.Dispose();
        }
    }
}
