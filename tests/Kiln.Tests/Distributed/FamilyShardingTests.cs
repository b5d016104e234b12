using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Tests.Cache;
using Kiln.Weights;

namespace Kiln.Tests.Distributed;

/// <summary>
/// Tensor parallelism on the families whose blocks differ from Llama's, two ranks as threads of a
/// <see cref="FakeWorld"/>: Phi-3's stored qkv_proj and gate_up_proj split per part (each rank's q, k and
/// v heads and its gate and up rows, also with LongRoPE's rotary embedding in primitive form), Gemma's GeGLU
/// split like a SwiGLU; every rank gives the logits of one.
/// </summary>
public sealed class FamilyShardingTests
{
    [Theory]
    [InlineData("phi3")]
    [InlineData("phi3_longrope")]
    [InlineData("gemma")]
    public void Each_rank_splits_attention_and_the_gated_mlp_and_gives_the_logits_of_one_process(string family)
    {
        using var temp = new TempDir();
        var directory = Directory(family, temp);
        // Past phi3_longrope's original context of 8: the long factors, with the rotary embedding in primitive form.
        long[] ids = [1, 7, 30, 12, 99, 4, 61, 5, 8, 13, 21];
        long[] positions = [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)];
        using var whole = LoadedModel.Load(directory);
        var expected = whole.Forward(ids, positions);
        var wholeBytes = whole.Weights.ToDictionary(w => w.Name, w => w.ByteLength);

        var ranks = new FakeWorld(2).Run(world =>
        {
            using var model = LoadedModel.Load(directory, world: world);
            var graph = model.Graph;
            var layers = graph.Nodes.Count(n => n.Op == "cached_attention");
            Assert.Equal(2, layers);
            // One sum after each attention block and each MLP block: both are split.
            Assert.Equal(2 * layers, graph.Nodes.Count(n => n.Op == "all_reduce"));
            foreach (var name in new[] { "model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.mlp.gate_up_proj.weight", "model.layers.0.mlp.down_proj.weight" })
                Assert.Equal(wholeBytes[name] / 2, model.Weights.Single(w => w.Name == name).ByteLength);
            // The rank's q, k and v rows (and gate and up rows), fused into one linear.
            var qkv = graph.Parameters.Single(p => p.Name == "model.layers.0.self_attn.qkv_proj.weight");
            Assert.IsType<SliceEachStep>(qkv.Recipe.Steps[0]);
            if (family.StartsWith("phi3", StringComparison.Ordinal)) Assert.All(qkv.Recipe.Sources, s => Assert.Equal(qkv.Name, s));
            return model.Forward(ids, positions);
        });
        foreach (var logits in ranks)
            Assert.True(expected.Zip(logits, (e, a) => Math.Abs(e - a)).Max() <= 1e-4f);
    }

    private static string Directory(string family, TempDir temp)
    {
        if (family == "phi3") return TestPaths.Oracle("phi3");
        var model = family == "gemma" ? "gemma" : "phi3";
        RandomCheckpointWriter.Write(new TestModelOptions(model, Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96, Vocab: 128,
            DType: DType.F32, Seed: 3, MaxPositions: 64, ModelType: model, WeightScale: 4), temp.Path);
        if (family == "phi3_longrope")
        {
            var path = Path.Combine(temp.Path, "config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            config["original_max_position_embeddings"] = 8;
            config["rope_scaling"] = new JsonObject
            {
                ["type"] = "longrope",
                ["short_factor"] = new JsonArray([.. Enumerable.Range(0, 8).Select(i => (JsonNode?)(1.0 + 0.1 * i))]),
                ["long_factor"] = new JsonArray([.. Enumerable.Range(0, 8).Select(i => (JsonNode?)(2.0 + 0.5 * i))]),
            };
            File.WriteAllText(path, config.ToJsonString());
        }
        return temp.Path;
    }
}
