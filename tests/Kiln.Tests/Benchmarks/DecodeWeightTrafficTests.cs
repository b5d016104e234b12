using Kiln.Benchmarks;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;
using Kiln.Weights;

namespace Kiln.Tests.Benchmarks;

public sealed class DecodeWeightTrafficTests
{
    [Fact]
    public void Default_model_reads_every_weight_once_with_the_tied_embedding_counted_once()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var graph = ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph;

        // stories260K: hidden 64, 5 layers, q/o 64x64, k/v 32x64 (4 of 8 heads of 8), MLP 3 x 172x64,
        // two norms per layer, a final norm, and the 512x64 embedding that is also the output head.
        const long perLayer = 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64 + 2 * 64;
        const long parameters = 5 * perLayer + 64 + 512 * 64;
        Assert.Equal(260_032, parameters);
        Assert.Equal(parameters * sizeof(float), DecodeWeightTraffic.BytesPerToken(graph));
        Assert.Equal(checkpoint.Tensors.Values.Sum(t => t.ByteLength), DecodeWeightTraffic.BytesPerToken(graph));
    }

    [Fact]
    public void An_untied_embedding_counts_one_row()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48,
            Vocab: 100, DType.F32, Seed: 1), dir.Path);
        using var checkpoint = Checkpoint.Open(dir.Path);
        var graph = ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph;

        var all = checkpoint.Tensors.Values.Sum(t => t.ByteLength);
        Assert.Equal(all - 100 * 32 * 4 + 32 * 4, DecodeWeightTraffic.BytesPerToken(graph));
    }

    [Theory]
    [InlineData("stored")]
    [InlineData("f32")]
    public void A_bf16_checkpoint_counts_its_weights_as_the_kernels_read_them(string weightDtype)
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48,
            Vocab: 100, DType.BF16, Seed: 1), dir.Path);
        using var checkpoint = Checkpoint.Open(dir.Path);
        var graph = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: [$"use_kiln_linear.weight_dtype={weightDtype}"])).Graph;

        // Matrices (the linears' weights and the embedding, of which a step reads one row) as stored or
        // upcast; the norm gains are always upcast.
        var matrixElementBytes = weightDtype == "stored" ? 2 : 4;
        var matrices = checkpoint.Tensors.Values.Where(t => t.Shape.Length == 2).Sum(t => t.ElementCount) - 99 * 32;
        var gains = checkpoint.Tensors.Values.Where(t => t.Shape.Length == 1).Sum(t => t.ElementCount);
        Assert.Equal(matrices * matrixElementBytes + gains * 4, DecodeWeightTraffic.BytesPerToken(graph));
        Assert.Equal(weightDtype == "stored" ? "bf16" : "f32", WeightFormat.Of(graph));
    }

    [Fact]
    public void The_weight_format_is_that_of_every_product_weight_or_mixed()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        Assert.Equal("f32", WeightFormat.Of(ModelCompiler.Compile(checkpoint, PipelineConfig.Load()).Graph));
        Assert.Equal("f32", WeightFormat.Of(ModelCompiler.Compile(checkpoint, PipelineConfig.Load(sets: ["use_kiln_linear.enabled=false"])).Graph));

        var graph = new ModelGraph(OpRegistry.Default);
        var x = graph.AddInput("x", DType.F32, new Shape([Dim.Of(1), Dim.Of(8)]));
        Assert.Equal(WeightFormat.None, WeightFormat.Of(graph));
        var a = graph.AddParameter("a", DType.BF16, [4, 8], LoadRecipe.FromSource("a"));
        graph.AddNode("kiln_linear", [x, a.Value]);
        Assert.Equal("bf16", WeightFormat.Of(graph));
        var b = graph.AddParameter("b", DType.F16, [4, 8], LoadRecipe.FromSource("b"));
        graph.AddNode("kiln_linear", [x, b.Value]);
        Assert.Equal(WeightFormat.Mixed, WeightFormat.Of(graph));
    }
}
