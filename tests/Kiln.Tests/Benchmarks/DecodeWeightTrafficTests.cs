using Kiln.Benchmarks;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Transforms;

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
}
