using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Models;
using Kiln.Ops;

namespace Kiln.Tests.Graph;

public sealed class GraphJsonTests
{
    public static TheoryData<string> Configs => new()
    {
        Path.Combine(TestPaths.DefaultModel, "config.json"),
        Path.Combine(TestPaths.Oracle("llama_gqa"), "config.json"),
        Path.Combine(TestPaths.Oracle("mistral"), "config.json"),
        Path.Combine(TestPaths.Oracle("qwen2"), "config.json"),
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Json_round_trip_prints_the_same_text(string configPath)
    {
        var graph = ModelFactory.Export(JsonNode.Parse(File.ReadAllText(configPath))!.AsObject(), configPath, OpRegistry.Core);
        GraphVerifier.Verify(graph);

        var json = GraphSerializer.ToJson(graph);
        var restored = GraphSerializer.FromJson(json, OpRegistry.Core);

        Assert.Equal(GraphPrinter.Print(graph), GraphPrinter.Print(restored));
        Assert.Equal(json, GraphSerializer.ToJson(restored));
    }
}
