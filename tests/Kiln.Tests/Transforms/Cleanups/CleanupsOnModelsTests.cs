using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Transforms.Cleanups;

/// <summary>The post_export cleanups of the default pipeline on every exported model family.</summary>
public sealed class CleanupsOnModelsTests
{
    public static TheoryData<string> Models => [TestPaths.DefaultModel, TestPaths.Oracle("llama_gqa"), TestPaths.Oracle("qwen2"), TestPaths.Oracle("mistral")];

    [Theory]
    [MemberData(nameof(Models))]
    public void Cleanups_shrink_the_graph_which_stays_valid_and_serializable(string directory)
    {
        var graph = Export(directory);
        var before = graph.Nodes.Count;

        Pipeline.Run(graph, Cleanups(), new TransformContext(null));

        Assert.True(graph.Nodes.Count < before, $"{before} nodes before, {graph.Nodes.Count} after");
        Assert.All(graph.History, info => Assert.True(info.GraphClean, $"{info.Name} left dead nodes"));
        Assert.DoesNotContain(graph.Nodes, n => n.Op == "cast" && n.Inputs[0].DType == n.Output.DType);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "reshape" or "expand" or "slice" && n.Inputs[0].Type == n.Output.Type);
        // One unsqueeze each of cos and sin serves every layer.
        var cosAndSin = graph.Nodes.Where(n => n.Op is "cos" or "sin").Select(n => n.Output).ToHashSet();
        Assert.Equal(2, graph.Nodes.Count(n => n.Op == "unsqueeze" && cosAndSin.Contains(n.Inputs[0])));
        var constants = graph.Nodes.Where(n => n.Op == "constant").Select(n => (n.Float("value"), n.String("dtype"))).ToArray();
        Assert.Equal(constants.Distinct().Count(), constants.Length);

        var json = GraphSerializer.ToJson(graph);
        var restored = GraphSerializer.FromJson(json, OpRegistry.Default);
        GraphVerifier.Verify(restored);
        Assert.Equal(GraphPrinter.Print(graph), GraphPrinter.Print(restored));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Cleanups_reach_a_fixed_point(string directory)
    {
        var graph = Export(directory);
        Pipeline.Run(graph, Cleanups(), new TransformContext(null));
        var once = GraphPrinter.Print(graph);

        Pipeline.Run(graph, Cleanups(), new TransformContext(null));

        Assert.All(graph.History.Skip(Cleanups().Count), info => Assert.Equal(0, info.Matches));
        Assert.Equal(once, GraphPrinter.Print(graph));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Logits_are_the_same_with_and_without_the_cleanups(string directory)
    {
        // Fusions absorb much of what the cleanups remove, so both runs leave them out.
        var noFusions = PipelineConfig.Load().Entries.Where(e => e.Stage == Stage.PatternMatcher).Select(e => $"{e.Name}.enabled=false").ToArray();
        var off = PipelineConfig.Load(sets: [.. noFusions, .. Cleanups().Select(e => $"{e.Name}.enabled=false")]);
        using var plain = LoadedModel.Load(directory, pipeline: off);
        using var cleaned = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: noFusions));
        Assert.True(cleaned.Graph.Nodes.Count < plain.Graph.Nodes.Count);

        long[] ids = [1, 7, 42, 3, 99, 5];
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var expected = plain.Forward(ids, positions);
        var actual = cleaned.Forward(ids, positions);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f, $"logit {i}: {expected[i]} vs {actual[i]}");
    }

    private static IReadOnlyList<PipelineEntry> Cleanups() =>
        PipelineConfig.Load().Entries.Where(e => e.Stage == Stage.PostExport && e.Name is
            "eliminate_dead_code" or "fold_constants" or "eliminate_common_subexpressions" or "remove_no_ops").ToArray();

    private static ModelGraph Export(string directory)
    {
        var configPath = Path.Combine(directory, "config.json");
        return ModelFactory.Export(JsonNode.Parse(File.ReadAllText(configPath))!.AsObject(), configPath, OpRegistry.Default);
    }
}
