using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit.Abstractions;

namespace Kiln.Tests.Transforms.PostLoadFusion;

/// <summary>
/// The post_load_fusion transforms in the default pipeline on every family: one q/k/v linear and one
/// gate/up linear per layer, and the same logits and greedy text as the pipeline without them.
/// </summary>
public sealed class FamilyPostLoadFusionTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-4f;

    private static readonly string[] Unfused = ["fuse_qkv_projections.enabled=false", "fuse_gate_up_projections.enabled=false"];

    public static TheoryData<string> Families => ["llama_gqa", "llama_gqa_sharded", "qwen2", "mistral", "phi3", "default", "bf16"];

    [Theory]
    [MemberData(nameof(Families))]
    public void Each_layer_has_one_qkv_linear_and_one_gate_up_linear(string family)
    {
        using var temp = new TempDir();
        // Without use_kiln_linear, which would hand the fused weights' pieces to its kernel instead.
        using var model = LoadedModel.Load(FamilyModels.Directory(family, temp), pipeline: PipelineConfig.Load(sets: ["use_kiln_linear.enabled=false"]));
        var graph = model.Graph;
        var layers = model.Checkpoint.Config["num_hidden_layers"]!.GetValue<int>();

        var weights = graph.Nodes.Where(n => n.Op == "linear").Select(n => n.Inputs[1].Name).ToList();
        Assert.Equal(layers, weights.Count(w => w.EndsWith(".self_attn.qkv_proj.weight", StringComparison.Ordinal)));
        Assert.Equal(layers, weights.Count(w => w.EndsWith(".mlp.gate_up_proj.weight", StringComparison.Ordinal)));
        Assert.Equal(layers, graph.Nodes.Count(n => n.Op == "cached_attention"));
        Assert.DoesNotContain(graph.Parameters, p => new[] { "q_proj", "k_proj", "v_proj", "gate_proj", "up_proj" }.Any(m => p.Name.Contains($".{m}.", StringComparison.Ordinal)));

        var qkv = graph.Parameters.Single(p => p.Name == "model.layers.0.self_attn.qkv_proj.weight");
        var gateUp = graph.Parameters.Single(p => p.Name == "model.layers.0.mlp.gate_up_proj.weight");
        if (family == "phi3")
        {
            // Phi-3 stores qkv_proj and gate_up_proj fused: the fused weights are their whole rows, views of the file.
            Assert.Equal([qkv.Name], qkv.Recipe.Sources);
            Assert.Equal([new SliceStep(0, 0, 128)], qkv.Recipe.Steps);
            Assert.Equal([gateUp.Name], gateUp.Recipe.Sources);
            Assert.Equal([new SliceStep(0, 0, 256)], gateUp.Recipe.Steps);
            Assert.False(model.Weights.Single(w => w.Name == qkv.Name).IsCopy);
            Assert.False(model.Weights.Single(w => w.Name == gateUp.Name).IsCopy);
            return;
        }
        Assert.Equal(["q_proj", "k_proj", "v_proj"], qkv.Recipe.Sources.Select(s => s.Split('.')[^2]));
        Assert.Equal(family == "bf16" ? [new CastStep(DType.F32), new ConcatStep(0)] : new RecipeStep[] { new ConcatStep(0) }, qkv.Recipe.Steps);
        Assert.Equal(family == "qwen2", graph.Parameters.Any(p => p.Name == "model.layers.0.self_attn.qkv_proj.bias"));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_and_greedy_text_equal_the_pipeline_without_the_fusions(string family)
    {
        using var temp = new TempDir();
        var directory = FamilyModels.Directory(family, temp);
        using var fused = LoadedModel.Load(directory);
        using var reference = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: Unfused));
        Assert.Contains(reference.Graph.Parameters, p => p.Name.EndsWith(".q_proj.weight", StringComparison.Ordinal));

        var ids = Enumerable.Range(0, 12).Select(i => (long)((i * 37 + 1) % fused.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (actual, expected) = (fused.Forward(ids, positions), reference.Forward(ids, positions));
        Assert.Equal(expected.Length, actual.Length);
        var difference = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"{family}: max |fused - unfused| over {ids.Length} positions = {difference}");
        Assert.True(difference <= Tolerance, $"max difference {difference}");

        var options = new GenerationOptions(32, new SamplingOptions(), new HashSet<int>());
        var prompt = ids.Take(5).Select(i => (int)i).ToArray();
        var text = new Generator(fused).Generate(prompt, options);
        Assert.Equal(32, text.NewIds.Length);
        Assert.Equal(new Generator(reference).Generate(prompt, options).NewIds, text.NewIds);
    }
}
