using System.Text.Json;
using Kiln.Ops;

namespace Kiln.Graph.Json;

/// <summary>
/// Writes a graph as deterministic JSON and reads it back. Reading accepts only registered op names and
/// verifies the graph, so a graph file is data: it can describe a computation but never run code.
/// </summary>
public static class GraphSerializer
{
    /// <summary>Bumped whenever the JSON form changes meaning (2: the model's facts as a typed "model" record, no longer metadata strings).</summary>
    public const int SchemaVersion = 2;

    public static string ToJson(ModelGraph graph) =>
        JsonSerializer.Serialize(ToDocument(graph), GraphJsonContext.Default.GraphDocument);

    public static GraphDocument ToDocument(ModelGraph graph) => new(
        SchemaVersion,
        graph.Model,
        new SortedDictionary<string, string>(graph.Metadata, StringComparer.Ordinal),
        graph.Inputs.Select(Describe).ToList(),
        graph.Parameters.Select(p => new ParameterDocument(p.Name, p.Value.DType.Name(), p.Value.Shape.ToSizes(), p.Recipe)).ToList(),
        graph.Buffers.Select(b => new BufferDocument(b.Name, b.Value.DType.Name(), b.Value.Shape.ToSizes(), b.Data)).ToList(),
        graph.Nodes.Select(n => new NodeDocument(
            n.Op,
            n.Inputs.Select(i => i.Name).ToList(),
            n.Outputs.Select(Describe).ToList(),
            new SortedDictionary<string, AttributeValue>(n.Attributes, StringComparer.Ordinal))).ToList(),
        graph.Outputs.Select(o => o.Name).ToList(),
        [.. graph.History],
        graph.NameCounter);

    /// <summary>Reads a graph; any problem (bad JSON, other schema version, unknown op, failed verification) is a <see cref="GraphException"/>.</summary>
    public static ModelGraph FromJson(string json, OpRegistry registry) => FromDocument(ReadDocument(json), registry);

    /// <summary>An independent copy of the graph, through its JSON form as UTF-8 bytes (no string of it is made).</summary>
    public static ModelGraph Copy(ModelGraph graph) =>
        FromDocument(ReadDocument(JsonSerializer.SerializeToUtf8Bytes(ToDocument(graph), GraphJsonContext.Default.GraphDocument)), graph.Registry);

    /// <summary>
    /// Parses a graph file's bytes: strict UTF-8 (invalid bytes are refused, not replaced), then the JSON
    /// straight from the bytes (<see cref="GraphDocumentReader"/>). No string of the whole file is made: at a large
    /// model's size it would be a large-object allocation that starts a full garbage collection in a fresh process.
    /// Malformed JSON (duplicated properties, too deep, unknown or missing members) is a <see cref="GraphException"/>.
    /// </summary>
    public static GraphDocument ReadDocument(ReadOnlySpan<byte> utf8)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8)) throw new GraphException("graph JSON is not valid UTF-8");
        try
        {
            return RefuseNulls(GraphDocumentReader.Read(utf8));
        }
        catch (Exception e) when (IsMalformed(e))
        {
            throw Malformed(e);
        }
    }

    /// <summary>Parses the JSON form without building the graph, as <see cref="ReadDocument(ReadOnlySpan{byte})"/>.</summary>
    public static GraphDocument ReadDocument(string json) => ReadDocument(System.Text.Encoding.UTF8.GetBytes(json));

    // System.Text.Json reports a recipe step or attribute without its "op"/"kind" discriminator as NotSupportedException.
    private static bool IsMalformed(Exception e) => e is JsonException or NotSupportedException;

    private static GraphException Malformed(Exception e) => new($"malformed graph JSON: {e.Message}");

    // System.Text.Json refuses a null for a non-nullable property, but not inside a list or as a
    // dictionary's value: those are refused here, so nothing that reads the document meets a null.
    private static GraphDocument RefuseNulls(GraphDocument document)
    {
        NoNull("metadata", document.Metadata.Values);
        NoNull("inputs", document.Inputs);
        NoNull("parameters", document.Parameters);
        foreach (var p in document.Parameters)
        {
            NoNull($"parameter '{p.Name}' recipe sources", p.Recipe.Sources);
            NoNull($"parameter '{p.Name}' recipe steps", p.Recipe.Steps);
        }
        NoNull("buffers", document.Buffers);
        NoNull("nodes", document.Nodes);
        foreach (var n in document.Nodes)
        {
            NoNull($"{n.Op} inputs", n.Inputs);
            NoNull($"{n.Op} outputs", n.Outputs);
            NoNull($"{n.Op} attributes", n.Attributes.Values);
        }
        NoNull("outputs", document.Outputs);
        NoNull("history", document.History);
        return document;
    }

    private static void NoNull<T>(string where, IEnumerable<T?> items)
    {
        if (items.Any(item => item is null)) throw new GraphException($"malformed graph JSON: null in {where}");
    }

    public static ModelGraph FromDocument(GraphDocument document, OpRegistry registry)
    {
        if (document.SchemaVersion != SchemaVersion)
            throw new GraphException($"graph schema version {document.SchemaVersion}, this Kiln reads {SchemaVersion}");
        var graph = new ModelGraph(registry) { Model = document.Model };
        foreach (var (key, value) in document.Metadata) graph.Metadata[key] = value;
        foreach (var input in document.Inputs) graph.AddInput(input.Name, ParseDType(input.Dtype), CheckSize(input.Name, input.Shape));
        foreach (var p in document.Parameters) graph.AddParameter(p.Name, ParseDType(p.Dtype), CheckSize(p.Name, p.Shape), p.Recipe);
        foreach (var b in document.Buffers) graph.AddBuffer(b.Name, ParseDType(b.Dtype), CheckSize(b.Name, b.Shape), b.Data);

        var values = graph.ValuesByName();
        foreach (var n in document.Nodes)
        {
            if (!registry.Contains(n.Op)) throw new GraphException($"unknown op '{n.Op}'");
            var inputs = n.Inputs.Select(name => values.GetValueOrDefault(name) ?? throw new GraphException($"{n.Op}: input '{name}' is not defined before use")).ToArray();
            var outputs = n.Outputs.Select(o => (o.Name, new TensorType(ParseDType(o.Dtype), CheckSize(o.Name, o.Shape)))).ToArray();
            var node = graph.AppendRestored(n.Op, inputs, outputs, WithDefaults(registry.Get(n.Op), n.Attributes));
            foreach (var output in node.Outputs) values[output.Name] = output;
        }
        graph.History.AddRange(document.History);
        graph.NameCounter = document.NameCounter;
        foreach (var name in document.Outputs)
            graph.Outputs.Add(values.GetValueOrDefault(name) ?? throw new GraphException($"graph output '{name}' is not defined"));
        GraphVerifier.Verify(graph);
        return graph;
    }

    // A node read back carries every optional attribute its op's schema defaults, as the verifier assumes
    // them: the lowering reads attributes from the node itself. The node copies them, so the document's own
    // dictionary serves when no default is missing.
    private static SortedDictionary<string, AttributeValue> WithDefaults(OpDefinition op, SortedDictionary<string, AttributeValue> attributes)
    {
        SortedDictionary<string, AttributeValue>? complete = null;
        foreach (var spec in op.Attributes)
        {
            if (spec.Default is null || attributes.ContainsKey(spec.Name)) continue;
            complete ??= new SortedDictionary<string, AttributeValue>(attributes, StringComparer.Ordinal);
            complete.Add(spec.Name, spec.Default);
        }
        return complete ?? attributes;
    }

    /// <summary>
    /// The most elements a value's known dimensions may multiply to (2^34, 64 GiB of f32: far above any
    /// tensor of a model this engine runs), so a graph file cannot ask for an allocation that overflows or exhausts memory.
    /// </summary>
    public const long MaxElements = 1L << 34;

    private static long[] CheckSize(string name, long[] sizes)
    {
        CheckSize(name, Shape.Of(sizes.Select(s => s >= 0 ? Dim.Of(s) : throw new GraphException($"value '{name}': negative dimension {s}")).ToArray()));
        return sizes;
    }

    private static Shape CheckSize(string name, Shape shape)
    {
        var elements = 1L;
        foreach (var dim in shape.Dims.Where(d => d.IsKnown))
        {
            // Compared before multiplying, so the product never wraps around.
            if (dim.Size > 0 && elements > MaxElements / dim.Size)
                throw new GraphException($"value '{name}': shape {shape} has more than {MaxElements} elements");
            elements *= dim.Size;
        }
        return shape;
    }

    private static ValueDocument Describe(Value v) => new(v.Name, v.DType.Name(), v.Shape);

    private static DType ParseDType(string name) =>
        DTypeExtensions.TryParse(name, out var type) ? type : throw new GraphException($"unknown dtype '{name}'");
}
