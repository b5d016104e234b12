using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Runtime;

namespace Kiln.Tests.Models;

/// <summary>
/// Phi-3's LongRoPE through the whole pipeline: a call whose positions stay within
/// original_max_position_embeddings rotates with the short factors, a longer one with the long factors
/// (transformers switches on max(position_ids) + 1 per call). With factors of 1 on one side the model
/// is the same as one without rope_scaling there, and differs on the other.
/// </summary>
public sealed class Phi3LongRopeTests
{
    private const int Original = 8;

    [Fact]
    public void Calls_within_the_original_context_use_the_short_factors_and_longer_ones_the_long_factors()
    {
        using var temp = new TempDir();
        var plain = Write(temp.File("plain"), scaling: null);
        var shortOnes = Write(temp.File("short-ones"), LongRope(shortFactor: 1, longFactor: 2));
        var longOnes = Write(temp.File("long-ones"), LongRope(shortFactor: 2, longFactor: 1));
        using var reference = LoadedModel.Load(plain);
        using var shortModel = LoadedModel.Load(shortOnes);
        using var longModel = LoadedModel.Load(longOnes);

        // Positions 0..7: max + 1 = 8 is not past the original 8, so the short factors apply.
        var within = Logits(reference, Original);
        Assert.True(MaxDifference(within, Logits(shortModel, Original)) <= 1e-5f);
        Assert.True(MaxDifference(within, Logits(longModel, Original)) > 1e-3f);
        // Positions 0..11: past it, so the long factors apply, at every position of the call.
        var beyond = Logits(reference, Original + 4);
        Assert.True(MaxDifference(beyond, Logits(longModel, Original + 4)) <= 1e-5f);
        Assert.True(MaxDifference(beyond, Logits(shortModel, Original + 4)) > 1e-3f);
    }

    [Fact]
    public void The_attention_factor_scales_cos_and_sin()
    {
        using var temp = new TempDir();
        using var reference = LoadedModel.Load(Write(temp.File("plain"), scaling: null));
        using var unscaled = LoadedModel.Load(Write(temp.File("unscaled"), LongRope(shortFactor: 1, longFactor: 1, attentionFactor: 1)));
        using var scaled = LoadedModel.Load(Write(temp.File("scaled"), LongRope(shortFactor: 1, longFactor: 1, attentionFactor: 1.5)));
        var expected = Logits(reference, Original + 4);
        Assert.True(MaxDifference(expected, Logits(unscaled, Original + 4)) <= 1e-5f);
        Assert.True(MaxDifference(expected, Logits(scaled, Original + 4)) > 1e-3f);
    }

    [Fact]
    public void Rotary_fuses_when_the_context_never_passes_the_original_one_and_stays_primitive_when_it_does()
    {
        using var temp = new TempDir();
        int RotaryOps(string directory, int context)
        {
            var path = Path.Combine(directory, "config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            config["max_position_embeddings"] = context;
            File.WriteAllText(path, config.ToJsonString());
            using var checkpoint = Checkpoint.Open(directory);
            var graph = Kiln.Models.ModelFactory.Export(checkpoint.Config, "config.json", Kiln.Ops.OpRegistry.Default);
            Kiln.Transforms.Pipeline.Run(graph, Kiln.Transforms.PipelineConfig.Load(sets: ["insert_kv_cache.enabled=false"]).Entries,
                new Kiln.Transforms.TransformContext(checkpoint));
            return graph.Nodes.Count(n => n.Op == "rotary_embedding");
        }
        // Short factors only (context 8 = original 8): one frequency table, fused for q and k.
        Assert.Equal(2, RotaryOps(Write(temp.File("short"), LongRope(shortFactor: 2, longFactor: 1)), Original));
        Assert.Equal(0, RotaryOps(Write(temp.File("switching"), LongRope(shortFactor: 2, longFactor: 1)), 64));
    }

    private static JsonObject LongRope(double shortFactor, double longFactor, double attentionFactor = 1) => new()
    {
        ["type"] = "longrope",
        ["short_factor"] = new JsonArray([.. Enumerable.Range(0, 8).Select(_ => (JsonNode?)shortFactor)]),
        ["long_factor"] = new JsonArray([.. Enumerable.Range(0, 8).Select(_ => (JsonNode?)longFactor)]),
        ["attention_factor"] = attentionFactor,
    };

    // One layer, head_dim 16 (8 rotated pairs), a context of 64 over an original one of 8; the same weights in every folder.
    private static string Write(string directory, JsonObject? scaling)
    {
        RandomCheckpointWriter.Write(new TestModelOptions("phi3", Layers: 1, Hidden: 32, Heads: 2, KvHeads: 2, Intermediate: 48, Vocab: 64,
            DType: DType.F32, Seed: 5, MaxPositions: 64, ModelType: "phi3", WeightScale: 4), directory);
        var path = Path.Combine(directory, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config["original_max_position_embeddings"] = Original;
        config["rope_scaling"] = scaling;
        File.WriteAllText(path, config.ToJsonString());
        return directory;
    }

    private static float[] Logits(LoadedModel model, int length)
    {
        var ids = Enumerable.Range(0, length).Select(i => (long)((i * 11 + 3) % model.VocabSize)).ToArray();
        return model.Forward(ids, Enumerable.Range(0, length).Select(i => (long)i).ToArray());
    }

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
}
