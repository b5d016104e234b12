using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Transforms;
using Xunit.Abstractions;

namespace Kiln.Tests.Transforms.Fusions;

/// <summary>The fusions of the default pipeline on every family: exact op counts, and the same logits as the unfused graph.</summary>
public sealed class FamilyFusionTests(ITestOutputHelper output)
{
    // "deep": 40 layers, so a rewrite sees many matches of each rule in one graph (the rewriter's index is updated per match).
    public static TheoryData<string> Families => ["llama_gqa", "qwen2", "mistral", "qwen3", "phi3", "default", "deep"];

    [Theory]
    [MemberData(nameof(Families))]
    public void The_default_pipeline_leaves_one_fused_op_per_block(string family)
    {
        using var temp = new TempDir();
        using var checkpoint = Checkpoint.Open(ModelDirectory(family, temp));
        var graph = ModelFactory.Export(checkpoint.Config, "config.json", OpRegistry.Default);
        var before = graph.Nodes.Count;
        // The fused graph: the default pipeline without the KV cache (which turns attention into cached_attention).
        Pipeline.Run(graph, PipelineConfig.Load(sets: ["insert_kv_cache.enabled=false"]).Entries, new TransformContext(checkpoint));
        output.WriteLine($"{family}: {before} nodes before the default pipeline, {graph.Nodes.Count} after");

        var layers = checkpoint.Config["num_hidden_layers"]!.GetValue<int>();
        var perHeadNorms = family == "qwen3" ? 2 * layers : 0;
        var count = graph.Nodes.CountBy(n => n.Op).ToDictionary();
        int Count(string op) => count.GetValueOrDefault(op);
        Assert.Equal(layers, Count("attention"));
        Assert.Equal(2 * layers, Count("rotary_embedding"));
        Assert.Equal(2 * layers, Count("skip_rms_norm"));
        Assert.Equal(1 + perHeadNorms, Count("rms_norm"));
        Assert.Equal(layers, Count("swiglu"));
        foreach (var op in new[] { "softmax", "expand", "rsqrt", "silu", "cos", "sin", "pow", "mean" }) Assert.Equal(0, Count(op));
        Assert.Empty(GraphAnalysis.DeadNodes(graph));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Fusions_match_after_cleanups_remove_identity_casts_and_merge_duplicates(string family)
    {
        using var temp = new TempDir();
        using var checkpoint = Checkpoint.Open(ModelDirectory(family, temp));
        var graph = ModelFactory.Export(checkpoint.Config, "config.json", OpRegistry.Default);
        RemoveIdentityCasts(graph);
        MergeDuplicates(graph);
        GraphVerifier.Verify(graph);
        Assert.DoesNotContain(graph.Nodes, n => n.Op == "cast" && n.Inputs[0].DType.Name() == n.String("to"));
        Assert.Single(graph.Nodes, n => n.Op == "constant" && n.Float("value") == 2);
        var cos = graph.Nodes.Single(n => n.Op == "cos").Output;
        Assert.Single(graph.Nodes, n => n.Inputs.Contains(cos));

        Pipeline.Run(graph, PipelineConfig.Load().Entries.Where(e => e.Stage == Stage.PatternMatcher).ToList(), new TransformContext(null));

        var layers = checkpoint.Config["num_hidden_layers"]!.GetValue<int>();
        var count = graph.Nodes.CountBy(n => n.Op).ToDictionary();
        Assert.Equal(layers, count["attention"]);
        Assert.Equal(2 * layers, count["rotary_embedding"]);
        Assert.Equal(2 * layers + 1 + (family == "qwen3" ? 2 * layers : 0), count["rms_norm"] + count["skip_rms_norm"]);
        Assert.Equal(layers, count["swiglu"]);
        Assert.Empty(GraphAnalysis.DeadNodes(graph));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Fused_logits_match_the_unfused_graph(string family)
    {
        using var temp = new TempDir();
        var directory = ModelDirectory(family, temp);
        var unfused = PipelineConfig.Load().Entries.Where(e => e.Stage == Stage.PatternMatcher).Select(e => $"{e.Name}.enabled=false").ToArray();
        using var fused = LoadedModel.Load(directory);
        using var reference = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: unfused));
        Assert.Contains(reference.Graph.Nodes, n => n.Op == "softmax");

        var ids = Enumerable.Range(0, 12).Select(i => (long)(i * 37 % fused.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (actual, expected) = (fused.Forward(ids, positions), reference.Forward(ids, positions));

        Assert.Equal(expected.Length, actual.Length);
        var difference = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"{family}: max |fused - unfused| = {difference}");
        Assert.True(difference <= 1e-4f, $"max difference {difference}");
    }

    // What a post_export cleanup may do: drop casts to the type a value already has.
    private static void RemoveIdentityCasts(ModelGraph graph)
    {
        var casts = graph.Nodes.Where(n => n.Op == "cast" && n.Inputs[0].DType.Name() == n.String("to")).ToList();
        foreach (var cast in casts) graph.ReplaceUses(cast.Output, cast.Inputs[0]);
        graph.EraseNodes(casts);
    }

    // ... and merge nodes computing the same thing (the shared RoPE unsqueezes, equal constants).
    private static void MergeDuplicates(ModelGraph graph)
    {
        var seen = new Dictionary<string, Node>(StringComparer.Ordinal);
        var duplicates = new List<Node>();
        foreach (var node in graph.Nodes.ToList())
        {
            var key = $"{node.Op}({string.Join(",", node.Inputs.Select(i => i.Name))}){string.Join(",", node.Attributes)}";
            if (seen.TryGetValue(key, out var first) && node.Outputs.Count == 1)
            {
                graph.ReplaceUses(node.Output, first.Output);
                duplicates.Add(node);
            }
            else seen[key] = node;
        }
        graph.EraseNodes(duplicates);
    }

    private static string ModelDirectory(string family, TempDir temp) => family switch
    {
        "default" => TestPaths.DefaultModel,
        "qwen3" => WriteQwen3(temp.Path),
        "deep" => WriteDeep(temp.Path),
        _ => TestPaths.Oracle(family),
    };

    private static string WriteDeep(string directory)
    {
        RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 40, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48, Vocab: 64,
            DType: DType.F32, Seed: 3, MaxPositions: 64, WeightScale: 4), directory);
        return directory;
    }

    // Qwen3 from the llama_gqa oracle: the same weights plus per-head q_norm/k_norm gains near 1.
    private static string WriteQwen3(string directory)
    {
        var source = TestPaths.Oracle("llama_gqa");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        config["model_type"] = "qwen3";
        config["architectures"] = new JsonArray("Qwen3ForCausalLM");
        config["head_dim"] = 16;
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString());

        using var weights = SafetensorsFile.Open(Path.Combine(source, "model.safetensors"));
        var norms = Enumerable.Range(0, config["num_hidden_layers"]!.GetValue<int>())
            .SelectMany(layer => new[] { "q_norm", "k_norm" }.Select(norm => $"model.layers.{layer}.self_attn.{norm}.weight"))
            .ToArray();
        var entries = weights.Tensors.Values.Select(t => new SafetensorsEntry(t.Name, t.DType, t.Shape))
            .Concat(norms.Select(name => new SafetensorsEntry(name, DType.F32, [16])));
        using var writer = SafetensorsWriter.Create(Path.Combine(directory, "model.safetensors"), entries);
        foreach (var entry in writer.Order)
        {
            var index = Array.IndexOf(norms, entry.Name);
            if (index < 0) writer.WriteTensor(entry.Name, weights.GetBytes(weights.Tensors[entry.Name]));
            else writer.WriteTensor(entry.Name, MemoryMarshal.AsBytes(Enumerable.Range(0, 16).Select(i => 1 + 0.1f * MathF.Sin(i + 16 * index)).ToArray().AsSpan()));
        }
        writer.Complete();
        return directory;
    }
}
