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

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_model_facts_are_a_typed_record_that_round_trips(string configPath)
    {
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var graph = ModelFactory.Export(config, configPath, OpRegistry.Core);
        var document = JsonNode.Parse(GraphSerializer.ToJson(graph))!;

        Assert.Equal(ModelFactory.Read(config, configPath).Facts, graph.Model);
        Assert.Equal((int)config["vocab_size"]!, (int)document["model"]!["vocab_size"]!);
        Assert.Equal((int)config["max_position_embeddings"]!, (int)document["model"]!["context_length"]!);
        Assert.Empty(document["metadata"]!.AsObject());
        Assert.Equal(graph.Model, GraphSerializer.FromJson(document.ToJsonString(), OpRegistry.Core).Model);
    }

    public static TheoryData<string, string> Hostile => new()
    {
        { "duplicated property", "Duplicate property 'schema_version'" },
        { "negative dimension", "negative dimension -4" },
        { "huge shape", "more than 17179869184 elements" },
        { "overflowing shape", "more than 17179869184 elements" },
        { "empty symbol", "a symbolic dimension must be a non-empty string" },
        { "fractional dimension", "a dimension size must be a non-negative 64-bit integer" },
        // Found by an independent fuzzing round: System.Text.Json's NotSupportedException escaped the reader.
        { "recipe step without its op", "must specify a type discriminator" },
        { "attribute without its kind", "must specify a type discriminator" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void A_graph_file_that_the_format_forbids_is_refused(string damage, string expected)
    {
        var document = JsonNode.Parse(DefaultGraphJson())!;
        var parameter = document["parameters"]![0]!;
        var input = document["inputs"]![0]!;
        var text = damage switch
        {
            "duplicated property" => "{\"schema_version\": 2, " + DefaultGraphJson().TrimStart()[1..],
            "negative dimension" => Edit(document, _ => parameter["shape"]![0] = -4),
            "huge shape" => Edit(document, _ => parameter["shape"] = new JsonArray(1L << 35)),
            // Each factor is small enough alone; their product wraps a 64-bit integer to a small number.
            "overflowing shape" => Edit(document, _ => parameter["shape"] = new JsonArray(1L << 32, 1L << 32, 1L << 32)),
            "empty symbol" => Edit(document, _ => input["shape"]![0] = ""),
            "fractional dimension" => Edit(document, _ => input["shape"]![0] = 1.5),
            "recipe step without its op" => Edit(document, _ => parameter["recipe"]!["steps"] = new JsonArray(new JsonObject { ["dim"] = 0 })),
            "attribute without its kind" => Edit(document, d => d["nodes"]![0]!["attributes"] = new JsonObject { ["x"] = new JsonObject { ["value"] = 1 } }),
            _ => throw new ArgumentException(damage),
        };
        var error = Assert.Throws<GraphException>(() => GraphSerializer.FromJson(text, OpRegistry.Core));
        Assert.Contains(expected, error.Message);
    }

    // Found by an independent fuzzing round: a null inside a list or as a metadata value passed the
    // reader and failed later with ArgumentNullException or NullReferenceException (a cache miss whose
    // reason named the exception).
    [Theory]
    [InlineData("metadata", "metadata")]
    [InlineData("an input", "inputs")]
    [InlineData("a parameter", "parameters")]
    [InlineData("a recipe source", "recipe sources")]
    [InlineData("a node", "nodes")]
    [InlineData("a node input", "inputs")]
    [InlineData("a node output", "outputs")]
    [InlineData("a graph output", "outputs")]
    [InlineData("a history entry", "history")]
    public void A_null_inside_a_list_or_map_is_refused(string where, string named)
    {
        var document = JsonNode.Parse(DefaultGraphJson())!;
        var text = Edit(document, d =>
        {
            switch (where)
            {
                case "metadata": d["metadata"]!["vocab_size"] = null; break;
                case "an input": d["inputs"]![0] = null; break;
                case "a parameter": d["parameters"]![0] = null; break;
                case "a recipe source": d["parameters"]![0]!["recipe"]!["sources"]![0] = null; break;
                case "a node": d["nodes"]![0] = null; break;
                case "a node input": d["nodes"]![0]!["inputs"]![0] = null; break;
                case "a node output": d["nodes"]![0]!["outputs"]![0] = null; break;
                case "a graph output": d["outputs"]![0] = null; break;
                case "a history entry": d["history"]!.AsArray().Add(null); break;
            }
        });
        var error = Assert.Throws<GraphException>(() => GraphSerializer.FromJson(text, OpRegistry.Core));
        Assert.StartsWith("malformed graph JSON: null in ", error.Message);
        Assert.EndsWith(named, error.Message);
    }

    [Fact]
    public void Invalid_UTF8_is_refused_not_replaced()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(DefaultGraphJson().Replace("\"llama\"", "\"ll?ma\""));
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xFF;
        var error = Assert.Throws<GraphException>(() => GraphSerializer.ReadDocument(bytes));
        Assert.Equal("graph JSON is not valid UTF-8", error.Message);
    }

    [Fact]
    public void A_node_read_back_carries_its_schema_defaults()
    {
        // gather's axis defaults to 0: without it the verifier passes, and the lowering must still find it.
        var document = JsonNode.Parse(DefaultGraphJson())!;
        var gather = document["nodes"]!.AsArray().First(n => n!["op"]!.ToString() == "gather")!;
        gather["attributes"]!.AsObject().Remove("axis");
        var graph = GraphSerializer.FromJson(document.ToJsonString(), OpRegistry.Core);
        Assert.Equal(0, graph.Nodes.First(n => n.Op == "gather").Int("axis"));
    }

    // GraphDocumentReader against the source-generated metadata it stands in for, on a real model's graph.
    [Theory]
    [MemberData(nameof(Configs))]
    public void The_field_by_field_reader_reads_what_the_generated_metadata_reads(string configPath)
    {
        var graph = ModelFactory.Export(JsonNode.Parse(File.ReadAllText(configPath))!.AsObject(), configPath, OpRegistry.Core);
        var json = GraphSerializer.ToJson(graph);

        var generated = System.Text.Json.JsonSerializer.Deserialize(json, GraphJsonContext.Default.GraphDocument)!;
        var read = GraphSerializer.ReadDocument(System.Text.Encoding.UTF8.GetBytes(json));

        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(generated, GraphJsonContext.Default.GraphDocument),
            System.Text.Json.JsonSerializer.Serialize(read, GraphJsonContext.Default.GraphDocument));
    }

    [Fact]
    public void A_value_name_read_twice_is_one_string_and_escaped_names_read_as_written()
    {
        var document = JsonNode.Parse(DefaultGraphJson())!;
        // A name with characters JSON escapes, written by the serializer as \u escapes and a quote escape.
        var input = document["inputs"]![0]!;
        var old = (string)input["name"]!;
        const string renamed = "ids \"<&>\" é";
        input["name"] = renamed;
        foreach (var node in document["nodes"]!.AsArray())
        {
            var inputs = node!["inputs"]!.AsArray();
            for (var i = 0; i < inputs.Count; i++) if ((string)inputs[i]! == old) inputs[i] = renamed;
        }

        var read = GraphSerializer.ReadDocument(System.Text.Encoding.UTF8.GetBytes(document.ToJsonString()));

        Assert.Equal(renamed, read.Inputs[0].Name);
        var reader = read.Nodes.First(n => n.Inputs.Contains(renamed));
        Assert.Same(read.Inputs[0].Name, reader.Inputs.First(i => i == renamed));
        var produced = read.Nodes[0].Outputs[0].Name;
        Assert.Same(produced, read.Nodes.First(n => n.Inputs.Contains(produced)).Inputs.First(i => i == produced));
    }

    [Theory]
    [InlineData("{}", "lacks its required property")]
    [InlineData("[]", "must be an object")]
    [InlineData("null", "must be an object")]
    [InlineData("{\"schema_version\": 2, \"unknown\": 1}", "unknown member 'unknown'")]
    public void A_graph_without_its_members_or_with_others_is_refused(string text, string expected)
    {
        var error = Assert.Throws<GraphException>(() => GraphSerializer.ReadDocument(System.Text.Encoding.UTF8.GetBytes(text)));
        Assert.StartsWith("malformed graph JSON: ", error.Message);
        Assert.Contains(expected, error.Message);
    }

    private static string DefaultGraphJson()
    {
        var configPath = Path.Combine(TestPaths.DefaultModel, "config.json");
        return GraphSerializer.ToJson(ModelFactory.Export(JsonNode.Parse(File.ReadAllText(configPath))!.AsObject(), configPath, OpRegistry.Core));
    }

    private static string Edit(JsonNode document, Action<JsonNode> edit)
    {
        edit(document);
        return document.ToJsonString();
    }
}
