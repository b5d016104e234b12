using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Weights;

public sealed class RecipeShapesTests
{
    private static TensorInfo Tensor(string name, DType dtype, params long[] shape) => new(name, dtype, shape, "f.safetensors", 0, 0);

    [Fact]
    public void InfersThroughEveryStepKind()
    {
        var q = Tensor("q", DType.BF16, 64, 32);
        var k = Tensor("k", DType.BF16, 16, 32);
        var recipe = new LoadRecipe(["q", "k"], [new SliceStep(1, 0, 16), new ConcatStep(0), new TransposeStep(), new CastStep(DType.F32)]);

        var (dtype, shape) = RecipeShapes.Infer([q, k], recipe);

        Assert.Equal(DType.F32, dtype);
        Assert.Equal([16L, 80], shape);
    }

    [Fact]
    public void SourcesAreLeftUntouched()
    {
        var a = Tensor("a", DType.F32, 4, 6);
        RecipeShapes.Infer([a], LoadRecipe.FromSource("a").Then(new SliceStep(1, 2, 2)));
        Assert.Equal([4L, 6], a.Shape);
    }

    [Theory]
    [InlineData(2, 0, 1, "dimension 2 does not exist")]
    [InlineData(0, 3, 2, "range [3, 5) is outside dimension 0")]
    [InlineData(1, -1, 1, "outside dimension 1")]
    public void SliceOutOfRange(int dim, long start, long length, string problem)
    {
        var e = Assert.Throws<KilnException>(() =>
            RecipeShapes.Infer([Tensor("a", DType.F32, 4, 6)], LoadRecipe.FromSource("a").Then(new SliceStep(dim, start, length))));
        Assert.Contains("step 1 slice", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Theory]
    [InlineData(2, new long[] { 4, 6 }, "")]
    [InlineData(4, new long[] { 4, 6 }, "columns split into 4 equal blocks")]
    [InlineData(1, new long[] { 4, 6 }, "columns split into 1 equal blocks (at least 2)")]
    [InlineData(2, new long[] { 24 }, "found shape [24]")]
    public void SplitColumnsNeedsEqualBlocksOfATwoDimensionalTensor(int parts, long[] shape, string problem)
    {
        var recipe = LoadRecipe.FromSource("a").Then(new SplitColumnsStep(parts));
        if (problem == "")
        {
            Assert.Equal([2L, 4, 3], RecipeShapes.Infer([Tensor("a", DType.BF16, shape)], recipe).Shape);
            return;
        }
        var e = Assert.Throws<KilnException>(() => RecipeShapes.Infer([Tensor("a", DType.BF16, shape)], recipe));
        Assert.Contains($"step 1 split_columns(parts={parts})", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void TransposeNeedsTwoDimensions()
    {
        var e = Assert.Throws<KilnException>(() =>
            RecipeShapes.Infer([Tensor("a", DType.F32, 4)], LoadRecipe.FromSource("a").Then(new TransposeStep())));
        Assert.Contains("needs a 2-D tensor, found shape [4]", e.Message);
    }

    [Fact]
    public void ConcatNeedsMatchingShapesAndTypes()
    {
        var a = Tensor("a", DType.F32, 4, 6);
        var wide = Tensor("b", DType.F32, 4, 7);
        var half = Tensor("c", DType.F16, 4, 6);

        Assert.Contains("differ outside dimension 0", Assert.Throws<KilnException>(() =>
            RecipeShapes.Infer([a, wide], new LoadRecipe(["a", "b"], [new ConcatStep(0)]))).Message);
        Assert.Contains("mixes f32 and f16", Assert.Throws<KilnException>(() =>
            RecipeShapes.Infer([a, half], new LoadRecipe(["a", "c"], [new ConcatStep(0)]))).Message);
        Assert.Equal([4L, 13], RecipeShapes.Infer([a, wide], new LoadRecipe(["a", "b"], [new ConcatStep(1)])).Shape);
    }

    [Fact]
    public void SeveralTensorsWithoutConcatIsAnError()
    {
        var e = Assert.Throws<KilnException>(() =>
            RecipeShapes.Infer([Tensor("a", DType.F32, 2), Tensor("b", DType.F32, 2)], new LoadRecipe(["a", "b"], [])));
        Assert.Contains("ends with 2 tensors", e.Message);
    }
}
