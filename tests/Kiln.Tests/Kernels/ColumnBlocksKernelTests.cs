using Kiln.Compile;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Tests.Compile;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// ai.kiln.Linear over one weight in column blocks, [parts, n, k / parts] (SplitColumnsStep's layout), inside
/// real ONNX Runtime sessions, for f32, bf16 and f16: the product of the whole weight against a double-precision
/// reference, one row and many, on one thread and split between several; a row's result the same bit for bit
/// whether it is computed alone or among other rows (f32's batch invariance); a block count that does not
/// divide k refused by the op.
/// </summary>
public sealed class ColumnBlocksKernelTests
{
    private const int Vocab = 23;

    public enum Format { Float32, BFloat16, Float16 }

    public static TheoryData<Format, int, int, int, int, int> Cases()
    {
        var data = new TheoryData<Format, int, int, int, int, int>();
        foreach (var format in Enum.GetValues<Format>())
        {
            // parts, width (k / parts), n, rows, threads
            data.Add(format, 2, 2816, 301, 1, 2);   // a down projection's row in two blocks, one row split over two threads
            data.Add(format, 3, 173, 1001, 1, 3);   // odd widths: every loop's tail
            data.Add(format, 3, 173, 301, 6, 2);    // several rows, gathered per block
            data.Add(format, 4, 64, 37, 5, 1);      // on the calling thread
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Session_output_equals_the_reference_product(Format format, int parts, int width, int n, int rows, int threads)
    {
        var k = parts * width;
        var e = LinearMathTests.Random(Vocab * k, 5);
        var w = Stored(format, LinearMathTests.Random(n * k, 6));
        var ids = Enumerable.Range(0, rows).Select(i => (long)(i * 7 % Vocab)).ToArray();

        var result = Run(format, e, Blocks(w.Stored, n, k, parts), parts, n, k, ids, threads);

        Assert.Equal([1, rows, n], result.Shape);
        var x = ids.SelectMany(id => e.AsSpan((int)id * k, k).ToArray()).ToArray();
        LinearMathTests.AssertClose(LinearMathTests.Reference(x, w.Values, rows, n, k), result.Data, k);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_float32_row_gets_the_same_bits_alone_as_among_other_rows(int threads)
    {
        const int parts = 2, width = 515, n = 301, rows = 7;
        const int k = parts * width;
        var e = LinearMathTests.Random(Vocab * k, 9);
        var w = Stored(Format.Float32, LinearMathTests.Random(n * k, 10));
        var blocks = Blocks(w.Stored, n, k, parts);
        var ids = Enumerable.Range(0, rows).Select(i => (long)(i * 5 % Vocab)).ToArray();

        var together = Run(Format.Float32, e, blocks, parts, n, k, ids, threads);

        for (var r = 0; r < rows; r++)
        {
            var alone = Run(Format.Float32, e, blocks, parts, n, k, [ids[r]], threads);
            Assert.Equal(alone.Data, together.Data.AsSpan(r * n, n).ToArray());
        }
    }

    [Fact]
    public void Blocks_that_do_not_make_up_k_fail_the_run_naming_the_op()
    {
        const int k = 96, n = 4;
        var e = LinearMathTests.Random(Vocab * k, 7);
        var w = Stored(Format.Float32, LinearMathTests.Random(n * k, 8));
        // Five blocks of 16 columns (float32: two ushorts each): 80, not 96.
        var error = Assert.Throws<KilnException>(() => Run(Format.Float32, e, w.Stored[..(n * 80 * 2)], 5, n, k, [1, 2], 1, width: 16));
        Assert.Contains("ai.kiln.Linear: each W must be [n, k] (or one W [parts, n, k / parts])", error.Message);
    }

    // The weight as the session stores it (float32 bits, or bf16/f16), and the values it holds.
    private static (ushort[] Stored, float[] Values) Stored(Format format, float[] w)
    {
        if (format == Format.Float32)
            return (w.SelectMany(v => { var bits = BitConverter.SingleToUInt32Bits(v); return new[] { (ushort)bits, (ushort)(bits >> 16) }; }).ToArray(), w);
        var half = format == Format.BFloat16 ? HalfLinearMathTests.Format.BFloat16 : HalfLinearMathTests.Format.Float16;
        var narrow = HalfLinearMathTests.Narrow(half, w);
        return (narrow, HalfLinearMathTests.Widen(half, narrow));
    }

    // [n, k] as [parts, n, k / parts], elements of any size (float32 as two ushorts).
    private static ushort[] Blocks(ushort[] w, int n, int k, int parts)
    {
        var size = w.Length / (n * k);
        var width = k / parts;
        var blocks = new ushort[w.Length];
        var at = 0;
        for (var p = 0; p < parts; p++)
        {
            for (var row = 0; row < n; row++, at += width * size)
                w.AsSpan((row * k + p * width) * size, width * size).CopyTo(blocks.AsSpan(at));
        }
        return blocks;
    }

    // out = Gather(E, ids) · Wᵀ with W given as [parts, n, width] (width k / parts unless told otherwise).
    private static FloatTensor Run(Format format, float[] e, ushort[] blocks, int parts, int n, int k, long[] ids, int threads, int? width = null)
    {
        var dtype = format switch { Format.Float32 => DType.F32, Format.BFloat16 => DType.BF16, _ => DType.F16 };
        long[] shape = [parts, n, width ?? k / parts];
        var g = new OnnxGraphBuilder();
        g.AddInput("ids", DType.I64, ["batch", "sequence"]);
        g.AddExternalInitializer("E", DType.F32, [Vocab, k]);
        g.AddExternalInitializer("W", dtype, shape);
        var x = g.AddNode("Gather", ["E", "ids"]);
        g.AddNode(LinearKernel.OpType, [x, "W"], domain: LinearKernel.Domain, output: "out");
        g.AddOutput("out", DType.F32, ["batch", "sequence", n]);

        using var eBuffer = NativeBuffer.Of<float>(e);
        using var wBuffer = NativeBuffer.Of<ushort>(blocks);
        using var session = CompiledSession.Create(g.ToBytes(), [eBuffer.As("E", DType.F32, [Vocab, k]), wBuffer.As("W", dtype, shape)],
            new SessionSettings(IntraOpThreads: threads));
        return session.Run(new Dictionary<string, Int64Tensor> { ["ids"] = new(ids, [1, ids.Length]) }, "out");
    }
}
