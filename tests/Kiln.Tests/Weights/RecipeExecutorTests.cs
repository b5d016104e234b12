using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Weights;

public sealed class RecipeExecutorTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Checkpoint _checkpoint;

    public RecipeExecutorTests()
    {
        CraftedFiles.Checkpoint(_dir.Path,
            (new SafetensorsEntry("a", DType.F32, [2, 3]), CraftedFiles.Floats(0, 1, 2, 3, 4, 5)),
            (new SafetensorsEntry("b", DType.F32, [1, 3]), CraftedFiles.Floats(10, 11, 12)),
            (new SafetensorsEntry("c", DType.F32, [2, 1]), CraftedFiles.Floats(20, 21)),
            (new SafetensorsEntry("cube", DType.F32, [2, 3, 2]), CraftedFiles.Floats([.. Enumerable.Range(0, 12).Select(i => (float)i)])),
            (new SafetensorsEntry("h", DType.BF16, [3]), [0x80, 0x3F, 0x00, 0xC0, 0x40, 0x3F]),
            (new SafetensorsEntry("ids", DType.I32, [2]), [1, 0, 0, 0, 2, 0, 0, 0]));
        _checkpoint = Checkpoint.Open(_dir.Path);
    }

    public void Dispose()
    {
        _checkpoint.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void WithoutStepsTheParameterIsAViewOfTheFile()
    {
        using var data = Run(LoadRecipe.FromSource("a"), DType.F32, [2, 3]);

        Assert.False(data.IsCopy);
        Assert.Equal(_checkpoint.GetPointer("a"), data.Pointer);
        Assert.Equal(24, data.ByteLength);
        Assert.Equal([0f, 1, 2, 3, 4, 5], Floats(data));
    }

    [Fact]
    public void Transpose()
    {
        using var data = Run(LoadRecipe.FromSource("a").Then(new TransposeStep()), DType.F32, [3, 2]);

        Assert.True(data.IsCopy);
        Assert.Equal(0, data.Pointer % 64);
        Assert.Equal([0f, 3, 1, 4, 2, 5], Floats(data));
    }

    [Fact]
    public void TransposeOfALargerMatrixCrossesTiles()
    {
        using var dir = new TempDir();
        const int rows = 37, cols = 70;
        var values = Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray();
        using var checkpoint = Checkpoint.Open(CraftedFiles.Checkpoint(dir.Path, (new SafetensorsEntry("m", DType.F32, [rows, cols]), CraftedFiles.Floats(values))));

        using var data = RecipeExecutor.Execute(checkpoint, "p", LoadRecipe.FromSource("m").Then(new TransposeStep()), DType.F32, [cols, rows]);

        var result = Floats(data);
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < cols; c++)
            Assert.Equal(values[r * cols + c], result[c * rows + r]);
    }

    [Fact]
    public void SliceOfColumnsCopies()
    {
        using var data = Run(LoadRecipe.FromSource("a").Then(new SliceStep(1, 1, 2)), DType.F32, [2, 2]);

        Assert.True(data.IsCopy);
        Assert.Equal([1f, 2, 4, 5], Floats(data));
    }

    [Fact]
    public void SliceOfLeadingRowsIsAView()
    {
        using var data = Run(LoadRecipe.FromSource("a").Then(new SliceStep(0, 1, 1)), DType.F32, [1, 3]);

        Assert.False(data.IsCopy);
        Assert.Equal(_checkpoint.GetPointer("a") + 12, data.Pointer);
        Assert.Equal([3f, 4, 5], Floats(data));
    }

    [Fact]
    public void SliceOfAMiddleDimension()
    {
        // cube[i, j, k] = 6i + 2j + k; keep j in [1, 3).
        using var data = Run(LoadRecipe.FromSource("cube").Then(new SliceStep(1, 1, 2)), DType.F32, [2, 2, 2]);

        Assert.Equal([2f, 3, 4, 5, 8, 9, 10, 11], Floats(data));
    }

    [Fact]
    public void ConcatRows()
    {
        var recipe = new LoadRecipe(["a", "b"], [new ConcatStep(0)]);
        using var data = Run(recipe, DType.F32, [3, 3]);

        Assert.Equal([0f, 1, 2, 3, 4, 5, 10, 11, 12], Floats(data));
    }

    [Fact]
    public void ConcatOfSeveralMegabytesLandsInAMappedBufferWithEveryValue()
    {
        // 2 x 1.5 MiB: the result (3 MiB) is above the huge-page threshold, each source below it.
        using var dir = new TempDir();
        const int rows = 384, cols = 1024;
        var first = Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray();
        var second = Enumerable.Range(0, rows * cols).Select(i => -(float)i).ToArray();
        using var checkpoint = Checkpoint.Open(CraftedFiles.Checkpoint(dir.Path,
            (new SafetensorsEntry("p", DType.F32, [rows, cols]), CraftedFiles.Floats(first)),
            (new SafetensorsEntry("q", DType.F32, [rows, cols]), CraftedFiles.Floats(second))));

        using var data = RecipeExecutor.Execute(checkpoint, "pq", new LoadRecipe(["p", "q"], [new ConcatStep(0)]), DType.F32, [2 * rows, cols]);

        Assert.True(data.IsCopy);
        Assert.True(data.ByteLength >= 2 << 20);
        Assert.Equal(0, data.Pointer % 64);
        Assert.Equal([.. first, .. second], Floats(data));
    }

    [Fact]
    public void ConcatColumns()
    {
        var recipe = new LoadRecipe(["a", "c"], [new ConcatStep(1)]);
        using var data = Run(recipe, DType.F32, [2, 4]);

        Assert.Equal([0f, 1, 2, 20, 3, 4, 5, 21], Floats(data));
    }

    [Fact]
    public void SliceEachThenConcatLikeATensorParallelShard()
    {
        // Column 1 of a and of b, stacked: what a rank keeps of two fused projections.
        var recipe = new LoadRecipe(["a", "b"], [new SliceStep(1, 1, 1), new ConcatStep(0)]);
        using var data = Run(recipe, DType.F32, [3, 1]);

        Assert.Equal([1f, 4, 11], Floats(data));
    }

    [Fact]
    public void SplitColumnsStoresEachBlockOfColumnsRowsInOrder()
    {
        using var wide = Run(new LoadRecipe(["a", "a"], [new ConcatStep(1)]).Then(new SplitColumnsStep(3)), DType.F32, [3, 2, 2]);
        Assert.True(wide.IsCopy);
        Assert.Equal(0, wide.Pointer % 64);
        // a is [[0, 1, 2], [3, 4, 5]]; joined with itself, [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]].
        Assert.Equal([0f, 1, 3, 4, 2, 0, 5, 3, 1, 2, 4, 5], Floats(wide));

        using var bf16 = Run(LoadRecipe.FromSource("b").Then(new CastStep(DType.BF16)).Then(new SplitColumnsStep(3)), DType.BF16, [3, 1, 1]);
        Assert.Equal([(ushort)0x4120, (ushort)0x4130, (ushort)0x4140], MemoryMarshal.Cast<byte, ushort>(bf16.Bytes).ToArray());
    }

    [Fact]
    public void CastBFloat16ToSingleIsExact()
    {
        using var data = Run(LoadRecipe.FromSource("h").Then(new CastStep(DType.F32)), DType.F32, [3]);

        Assert.True(data.IsCopy);
        Assert.Equal([1f, -2f, 0.75f], Floats(data));
    }

    [Fact]
    public void CastSingleToBFloat16AndHalf()
    {
        using var bf16 = Run(LoadRecipe.FromSource("b").Then(new CastStep(DType.BF16)), DType.BF16, [1, 3]);
        using var half = Run(LoadRecipe.FromSource("b").Then(new CastStep(DType.F16)), DType.F16, [1, 3]);

        Assert.Equal([(ushort)0x4120, (ushort)0x4130, (ushort)0x4140], MemoryMarshal.Cast<byte, ushort>(bf16.Bytes).ToArray());
        Assert.Equal([(Half)10, (Half)11, (Half)12], MemoryMarshal.Cast<byte, Half>(half.Bytes).ToArray());
    }

    [Fact]
    public void CastToTheSameTypeKeepsTheView()
    {
        using var data = Run(LoadRecipe.FromSource("a").Then(new CastStep(DType.F32)), DType.F32, [2, 3]);

        Assert.False(data.IsCopy);
    }

    [Fact]
    public void IntegerCastIsRejectedBeforeReading()
    {
        var e = Assert.Throws<KilnException>(() => Run(LoadRecipe.FromSource("ids").Then(new CastStep(DType.F32)), DType.F32, [2]));

        Assert.Contains("param", e.Message);
        Assert.Contains("cast from i32 to f32 is not supported", e.Message);
    }

    [Fact]
    public void MissingSourceNamesTheTensorAndTheCheckpoint()
    {
        var e = Assert.Throws<KilnException>(() => Run(LoadRecipe.FromSource("model.absent.weight"), DType.F32, [2, 3]));

        Assert.StartsWith($"{_dir.Path}: model.absent.weight", e.Message);
        Assert.Contains("param", e.Message);
    }

    [Fact]
    public void WrongExpectedShapeNamesParameterAndBothShapes()
    {
        var e = Assert.Throws<KilnException>(() => Run(LoadRecipe.FromSource("a"), DType.F32, [3, 2]));

        Assert.Equal("parameter param: expected f32 [3, 2], but recipe source(a) gives f32 [2, 3]", e.Message);
    }

    [Fact]
    public void WrongExpectedDtype()
    {
        var e = Assert.Throws<KilnException>(() => Run(LoadRecipe.FromSource("h"), DType.F32, [3]));

        Assert.Contains("expected f32 [3]", e.Message);
        Assert.Contains("gives bf16 [3]", e.Message);
    }

    [Fact]
    public void MisalignedViewIsCopiedToAlignedMemory()
    {
        using var dir = new TempDir();
        // One byte tensor first puts the f32 tensor at an odd address; the 8 + 56 header keeps the data start aligned.
        var header = """{"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}}""";
        header = header.PadRight((header.Length + 7) / 8 * 8);
        var path = CraftedFiles.RawSafetensors(Path.Combine(dir.Path, "model.safetensors"), header, 0);
        File.AppendAllBytes(path, [9, .. CraftedFiles.Floats(2.5f)]);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), "{}");
        using var checkpoint = Checkpoint.Open(dir.Path);

        using var data = RecipeExecutor.Execute(checkpoint, "w", LoadRecipe.FromSource("w"), DType.F32, [1]);

        Assert.NotEqual(0, checkpoint.GetPointer("w") % 4);
        Assert.True(data.IsCopy);
        Assert.Equal([2.5f], Floats(data));
    }

    private ParameterData Run(LoadRecipe recipe, DType dtype, long[] shape) =>
        RecipeExecutor.Execute(_checkpoint, "param", recipe, dtype, shape);

    private static float[] Floats(ParameterData data) => CraftedFiles.ToFloats(data.Bytes);
}
