using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Transforms;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Tests.Transforms.Compile;

/// <summary>
/// use_kiln_linear on every family: every projection (4 per layer after the post-load fusions) and the
/// LM head run on ai.kiln.Linear, biases become adds, and logits and greedy text equal those of ORT's
/// MatMul (the transform disabled). With weights_in_pieces, the fused q/k/v and gate/up weights are
/// the checkpoint's own tensors (no copy, float32 or bf16), with the same logits.
/// </summary>
public sealed class UseKilnLinearTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-4f;

    private const string Pieces = "use_kiln_linear.weights_in_pieces=true";

    public static TheoryData<string> Families => ["llama_gqa", "qwen2", "mistral", "phi3", "default", "bf16"];

    [Theory]
    [MemberData(nameof(Families))]
    public void Every_float32_projection_runs_on_the_kiln_kernel(string family)
    {
        using var temp = new TempDir();
        using var model = LoadedModel.Load(FamilyModels.Directory(family, temp));
        var graph = model.Graph;
        var layers = model.Checkpoint.Config["num_hidden_layers"]!.GetValue<int>();

        Assert.DoesNotContain(graph.Nodes, n => n.Op == "linear");
        Assert.Equal(4 * layers + 1, graph.Nodes.Count(n => n.Op == "kiln_linear"));
        var biases = graph.Nodes.Count(n => n.Op == "add" && n.Inputs[0].Name.Contains("qkv", StringComparison.Ordinal));
        Assert.Equal(family == "qwen2" ? layers : 0, biases);
        Assert.Equal("use_kiln_linear", graph.History.Single(h => h.Name == "use_kiln_linear").Name);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void With_weights_in_pieces_fused_projections_read_the_checkpoint_tensors(string family)
    {
        using var temp = new TempDir();
        var directory = FamilyModels.Directory(family, temp);
        using var model = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: [Pieces]));
        using var copied = LoadedModel.Load(directory);
        var graph = model.Graph;
        var layers = model.Checkpoint.Config["num_hidden_layers"]!.GetValue<int>();

        if (family == "phi3")
        {
            // Phi-3's checkpoint stores qkv_proj and gate_up_proj: the fused weights are views of them already, with or without pieces.
            Assert.Equal(layers, graph.Nodes.Count(n => n.Op == "kiln_linear" && n.Inputs[1].Name.EndsWith(".qkv_proj.weight", StringComparison.Ordinal)));
            Assert.Equal(0, copied.CopiedWeightBytes);
        }
        else
        {
            // The other families' members are whole tensors of the weight's dtype (bf16 ones stay bf16), so every fused weight comes in pieces.
            Assert.Equal(layers, graph.Nodes.Count(n => n.Op == "kiln_linear" && n.Inputs.Count == 4
                && n.Inputs[1].Name.EndsWith(".q_proj.weight", StringComparison.Ordinal)));
            Assert.Contains(graph.Parameters, p => p.Name == "model.layers.0.mlp.up_proj.weight");
            Assert.DoesNotContain(graph.Parameters, p => p.Name.EndsWith(".qkv_proj.weight", StringComparison.Ordinal));
        }
        if (family is "llama_gqa" or "mistral" or "default")
        {
            Assert.Equal(0, model.CopiedWeightBytes);
            Assert.True(copied.CopiedWeightBytes > 0);
        }
        // No weight the kernel reads is a copy (a bf16 checkpoint's copies are its upcast norm gains).
        var kernelWeights = graph.Nodes.Where(n => n.Op == "kiln_linear").SelectMany(n => n.Inputs.Skip(1)).Select(v => v.Name).ToHashSet();
        Assert.DoesNotContain(model.Weights, w => kernelWeights.Contains(w.Name) && w.IsCopy);

        var ids = Enumerable.Range(0, 12).Select(i => (long)((i * 37 + 1) % model.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var difference = model.Forward(ids, positions).Zip(copied.Forward(ids, positions), (a, e) => Math.Abs(a - e)).Max();
        Assert.True(difference <= Tolerance, $"max difference {difference}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_and_greedy_text_equal_those_of_onnx_runtime_matmul(string family)
    {
        using var temp = new TempDir();
        var directory = FamilyModels.Directory(family, temp);
        using var kiln = LoadedModel.Load(directory, new Kiln.Compile.SessionSettings(IntraOpThreads: 2));
        using var reference = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: ["use_kiln_linear.enabled=false"]));
        Assert.Contains(reference.Graph.Nodes, n => n.Op == "linear");
        Assert.DoesNotContain(reference.Graph.Nodes, n => n.Op == "kiln_linear");

        var ids = Enumerable.Range(0, 12).Select(i => (long)((i * 37 + 1) % kiln.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (actual, expected) = (kiln.Forward(ids, positions), reference.Forward(ids, positions));
        var difference = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"{family}: max |kiln - ORT MatMul| over {ids.Length} positions = {difference}");
        Assert.True(difference <= Tolerance, $"max difference {difference}");

        var options = new GenerationOptions(32, new SamplingOptions(), new HashSet<int>());
        var prompt = ids.Take(5).Select(i => (int)i).ToArray();
        Assert.Equal(new Generator(reference).Generate(prompt, options).NewIds, new Generator(kiln).Generate(prompt, options).NewIds);
    }
}
