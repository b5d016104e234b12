using Kiln.Checkpoints.Gguf;
using Kiln.Runtime;
using Kiln.Tests.Cache;
using Kiln.Tests.Checkpoints.Gguf;
using Kiln.Transforms;

namespace Kiln.Tests.Distributed;

/// <summary>
/// GGUF checkpoints over two tensor-parallel ranks (threads of a <see cref="FakeWorld"/>): llama.cpp's q/k row
/// order is undone before a rank takes its heads, block tensors keep their blocks where a rank takes whole
/// rows and are dequantized where it takes a share of the inputs.
/// </summary>
public sealed class GgufShardedTests : IDisposable
{
    private static readonly long[] Ids = [1, 403, 407, 261, 378, 11, 12, 300];
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Every_rank_of_the_gguf_gives_the_folders_logits()
    {
        var expected = Logits(TestPaths.DefaultModel);
        var ranks = new FakeWorld(2).Run(world => Logits(GgufModels.Stories260K, world: world));
        Assert.All(ranks, logits => Assert.True(MaxDifference(logits, expected) <= 1e-4, $"difference {MaxDifference(logits, expected)}"));
    }

    [Fact]
    public void Blocks_split_by_rows_stay_blocks_and_blocks_split_by_inputs_are_dequantized()
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File("q8_0.gguf"), GgufModels.LinearsIn(GgmlType.Q8_0));
        var recipes = new FakeWorld(2).Run(world =>
        {
            using var model = LoadedModel.Load(path, new Kiln.Compile.SessionSettings(IntraOpThreads: 1), world: world);
            string Recipe(string name) => model.Graph.Parameters.Single(p => p.Name == name).Recipe.ToString();
            return (Qkv: Recipe("model.layers.0.self_attn.qkv_proj.weight"), O: Recipe("model.layers.0.self_attn.o_proj.weight"));
        });
        const string prefix = "model.layers.0.self_attn";
        Assert.Equal($"source({prefix}.q_proj.weight, {prefix}.k_proj.weight, {prefix}.v_proj.weight) |> deinterleave_rows(group=8, only=[0, 1]) " +
            "|> slice_each(dim=0, starts=[32, 16, 16], lengths=[32, 16, 16]) |> concat(dim=0)", recipes[1].Qkv);
        Assert.Equal($"source({prefix}.o_proj.weight) |> dequantize(int8) |> slice(dim=1, start=32, length=32)", recipes[1].O);

        // With quantize_weights off, every block tensor is dequantized: the ranks then give the single process's logits.
        var floats = PipelineConfig.Load(null, ["quantize_weights.enabled=false"]);
        var expected = Logits(path, floats);
        var ranks = new FakeWorld(2).Run(world => Logits(path, floats, world));
        Assert.All(ranks, logits => Assert.True(MaxDifference(logits, expected) <= 1e-4, $"difference {MaxDifference(logits, expected)}"));
    }

    private static float[] Logits(string model, PipelineConfig? pipeline = null, Kiln.Distributed.ICommunicator? world = null)
    {
        using var loaded = LoadedModel.Load(model, new Kiln.Compile.SessionSettings(IntraOpThreads: 1), pipeline, world: world);
        return loaded.Forward(Ids, [.. Enumerable.Range(0, Ids.Length).Select(i => (long)i)]);
    }

    private static double MaxDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
    }
}
