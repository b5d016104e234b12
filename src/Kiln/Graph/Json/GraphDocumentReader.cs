using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Kiln.Graph.Json;

/// <summary>
/// Reads a graph file's JSON into a <see cref="GraphDocument"/> field by field with a <see cref="Utf8JsonReader"/>:
/// the inputs, parameters, nodes and outputs, nearly all of a large model's file, without the metadata-driven
/// converters (their per-object bookkeeping was half of a warm 70B-shaped <c>kiln compile</c>'s restore), and
/// each value name made once and shared by every node that reads it. The small parts (the model's facts,
/// metadata, recipes, attributes, buffers, history) go through the source-generated metadata. The same rules as
/// <see cref="GraphJsonContext"/>'s: unknown members, duplicated properties and missing required ones are
/// refused, nesting is bounded, and a null is refused where the type has none (inside a list it is kept, for
/// <see cref="GraphSerializer"/> to refuse with the list's name). Problems are <see cref="JsonException"/>s.
/// </summary>
internal static class GraphDocumentReader
{
    /// <summary>Longest name looked up without allocating (in UTF-16 units); longer names are made as strings first.</summary>
    private const int MaxPooledName = 256;

    private static readonly JsonReaderOptions Options = new() { MaxDepth = GraphJsonContext.MaxDepth };

    private delegate T ItemReader<T>(ref Utf8JsonReader reader, Names names);

    /// <summary>The strings read so far, so that equal texts share one string.</summary>
    private sealed class Names
    {
        private readonly Dictionary<string, string> _byText = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _byChars;

        public Names() => _byChars = _byText.GetAlternateLookup<ReadOnlySpan<char>>();

        // The string token's text, the same string object every time the same text comes by.
        public string Of(ref Utf8JsonReader reader)
        {
            if (reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > MaxPooledName) return Intern(reader.GetString()!);
            Span<char> chars = stackalloc char[MaxPooledName];
            var text = chars[..Encoding.UTF8.GetChars(reader.ValueSpan, chars)];
            return _byChars.TryGetValue(text, out var known) ? known : Intern(text.ToString());
        }

        private string Intern(string text)
        {
            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_byText, text, out var exists);
            if (!exists) slot = text;
            return slot!;
        }
    }

    public static GraphDocument Read(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, Options);
        Next(ref reader);
        var document = ReadDocument(ref reader, new Names());
        if (reader.Read()) throw new JsonException("more JSON after the graph");
        return document;
    }

    private static GraphDocument ReadDocument(ref Utf8JsonReader r, Names names)
    {
        Expect(ref r, JsonTokenType.StartObject, "the graph");
        int? schemaVersion = null, nameCounter = null;
        ModelFacts? model = null;
        var hasModel = false;
        SortedDictionary<string, string>? metadata = null;
        List<ValueDocument>? inputs = null;
        List<ParameterDocument>? parameters = null;
        List<BufferDocument>? buffers = null;
        List<NodeDocument>? nodes = null;
        List<string>? outputs = null;
        List<TransformInfo>? history = null;
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("schema_version"u8)) { First(schemaVersion, "schema_version"); Next(ref r); schemaVersion = ReadInt32(ref r); }
            else if (r.ValueTextEquals("model"u8))
            {
                if (hasModel) throw Duplicated("model");
                hasModel = true;
                Next(ref r);
                model = r.TokenType == JsonTokenType.Null ? null : JsonSerializer.Deserialize(ref r, GraphJsonContext.Default.ModelFacts);
            }
            else if (r.ValueTextEquals("metadata"u8)) { First(metadata, "metadata"); metadata = Delegated(ref r, GraphJsonContext.Default.SortedDictionaryStringString, "metadata"); }
            else if (r.ValueTextEquals("inputs"u8)) { First(inputs, "inputs"); inputs = ReadList(ref r, names, "inputs", ReadValue); }
            else if (r.ValueTextEquals("parameters"u8)) { First(parameters, "parameters"); parameters = ReadList(ref r, names, "parameters", ReadParameter); }
            else if (r.ValueTextEquals("buffers"u8)) { First(buffers, "buffers"); buffers = Delegated(ref r, GraphJsonContext.Default.ListBufferDocument, "buffers"); }
            else if (r.ValueTextEquals("nodes"u8)) { First(nodes, "nodes"); nodes = ReadList(ref r, names, "nodes", ReadNode); }
            else if (r.ValueTextEquals("outputs"u8)) { First(outputs, "outputs"); outputs = ReadList(ref r, names, "outputs", ReadName); }
            else if (r.ValueTextEquals("history"u8)) { First(history, "history"); history = Delegated(ref r, GraphJsonContext.Default.ListTransformInfo, "history"); }
            else if (r.ValueTextEquals("name_counter"u8)) { First(nameCounter, "name_counter"); Next(ref r); nameCounter = ReadInt32(ref r); }
            else throw Unknown(ref r, "the graph");
        }
        if (!hasModel) throw Missing("model", "the graph");
        return new GraphDocument(
            schemaVersion ?? throw Missing("schema_version", "the graph"), model,
            metadata ?? throw Missing("metadata", "the graph"),
            inputs ?? throw Missing("inputs", "the graph"),
            parameters ?? throw Missing("parameters", "the graph"),
            buffers ?? throw Missing("buffers", "the graph"),
            nodes ?? throw Missing("nodes", "the graph"),
            outputs ?? throw Missing("outputs", "the graph"),
            history ?? throw Missing("history", "the graph"),
            nameCounter ?? 0);
    }

    private static NodeDocument ReadNode(ref Utf8JsonReader r, Names names)
    {
        Expect(ref r, JsonTokenType.StartObject, "a node");
        string? op = null;
        List<string>? inputs = null;
        List<ValueDocument>? outputs = null;
        SortedDictionary<string, AttributeValue>? attributes = null;
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("op"u8)) { First(op, "op"); op = ReadString(ref r, names, "op"); }
            else if (r.ValueTextEquals("inputs"u8)) { First(inputs, "inputs"); inputs = ReadList(ref r, names, "inputs", ReadName); }
            else if (r.ValueTextEquals("outputs"u8)) { First(outputs, "outputs"); outputs = ReadList(ref r, names, "outputs", ReadValue); }
            else if (r.ValueTextEquals("attributes"u8)) { First(attributes, "attributes"); attributes = ReadAttributes(ref r, names); }
            else throw Unknown(ref r, "a node");
        }
        return new NodeDocument(op ?? throw Missing("op", "a node"), inputs ?? throw Missing("inputs", "a node"),
            outputs ?? throw Missing("outputs", "a node"), attributes ?? throw Missing("attributes", "a node"));
    }

    // Attribute names are pooled like value names; each value goes through the metadata (its "kind" picks the type).
    private static SortedDictionary<string, AttributeValue> ReadAttributes(ref Utf8JsonReader r, Names names)
    {
        NextNotNull(ref r, "attributes");
        Expect(ref r, JsonTokenType.StartObject, "attributes");
        var attributes = new SortedDictionary<string, AttributeValue>(StringComparer.Ordinal);
        while (NextProperty(ref r))
        {
            var name = names.Of(ref r);
            if (attributes.ContainsKey(name)) throw Duplicated(name);
            Next(ref r);
            // A null value is kept for GraphSerializer to refuse, as in a list.
            attributes.Add(name, r.TokenType == JsonTokenType.Null ? null! : JsonSerializer.Deserialize(ref r, GraphJsonContext.Default.AttributeValue)!);
        }
        return attributes;
    }

    private static ValueDocument ReadValue(ref Utf8JsonReader r, Names names)
    {
        Expect(ref r, JsonTokenType.StartObject, "a value");
        string? name = null, dtype = null;
        Shape? shape = null;
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("name"u8)) { First(name, "name"); name = ReadString(ref r, names, "name"); }
            else if (r.ValueTextEquals("dtype"u8)) { First(dtype, "dtype"); dtype = ReadString(ref r, names, "dtype"); }
            else if (r.ValueTextEquals("shape"u8)) { First(shape, "shape"); shape = ReadShape(ref r, names); }
            else throw Unknown(ref r, "a value");
        }
        return new ValueDocument(name ?? throw Missing("name", "a value"), dtype ?? throw Missing("dtype", "a value"), shape ?? throw Missing("shape", "a value"));
    }

    private static ParameterDocument ReadParameter(ref Utf8JsonReader r, Names names)
    {
        Expect(ref r, JsonTokenType.StartObject, "a parameter");
        string? name = null, dtype = null;
        long[]? shape = null;
        Weights.LoadRecipe? recipe = null;
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("name"u8)) { First(name, "name"); name = ReadString(ref r, names, "name"); }
            else if (r.ValueTextEquals("dtype"u8)) { First(dtype, "dtype"); dtype = ReadString(ref r, names, "dtype"); }
            else if (r.ValueTextEquals("shape"u8)) { First(shape, "shape"); shape = ReadSizes(ref r); }
            else if (r.ValueTextEquals("recipe"u8)) { First(recipe, "recipe"); recipe = Delegated(ref r, GraphJsonContext.Default.LoadRecipe, "recipe"); }
            else throw Unknown(ref r, "a parameter");
        }
        return new ParameterDocument(name ?? throw Missing("name", "a parameter"), dtype ?? throw Missing("dtype", "a parameter"),
            shape ?? throw Missing("shape", "a parameter"), recipe ?? throw Missing("recipe", "a parameter"));
    }

    // A shape as ShapeJsonConverter reads it: sizes and symbols (the symbols pooled).
    private static Shape ReadShape(ref Utf8JsonReader r, Names names)
    {
        NextNotNull(ref r, "shape");
        Expect(ref r, JsonTokenType.StartArray, "a shape");
        var dims = new List<Dim>(4);
        while (Next(ref r) != JsonTokenType.EndArray)
        {
            dims.Add(r.TokenType switch
            {
                JsonTokenType.Number => r.TryGetInt64(out var size) && size >= 0 ? Dim.Of(size) : throw new JsonException("a dimension size must be a non-negative 64-bit integer"),
                JsonTokenType.String => names.Of(ref r) is { Length: > 0 } symbol ? Dim.Sym(symbol) : throw new JsonException("a symbolic dimension must be a non-empty string"),
                _ => throw new JsonException("a dimension must be a number or a string"),
            });
        }
        return new Shape(dims);
    }

    private static long[] ReadSizes(ref Utf8JsonReader r)
    {
        NextNotNull(ref r, "shape");
        Expect(ref r, JsonTokenType.StartArray, "a shape");
        var sizes = new List<long>(4);
        while (Next(ref r) != JsonTokenType.EndArray)
            sizes.Add(r.TokenType == JsonTokenType.Number && r.TryGetInt64(out var size) ? size : throw new JsonException("a parameter's shape must hold 64-bit integers"));
        return [.. sizes];
    }

    // The list a property holds, its items read by readItem; a JSON null item is kept as null (GraphSerializer refuses it, naming the list).
    private static List<T> ReadList<T>(ref Utf8JsonReader r, Names names, string name, ItemReader<T> readItem) where T : class
    {
        NextNotNull(ref r, name);
        Expect(ref r, JsonTokenType.StartArray, name);
        var items = new List<T>();
        while (Next(ref r) != JsonTokenType.EndArray) items.Add(r.TokenType == JsonTokenType.Null ? null! : readItem(ref r, names));
        return items;
    }

    private static T Delegated<T>(ref Utf8JsonReader r, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string name)
    {
        NextNotNull(ref r, name);
        return JsonSerializer.Deserialize(ref r, type) ?? throw new JsonException($"'{name}' must not be null");
    }

    // A property's string value (the reader on the property's name).
    private static string ReadString(ref Utf8JsonReader r, Names names, string name)
    {
        NextNotNull(ref r, name);
        return ReadName(ref r, names);
    }

    // The string token the reader is on, pooled.
    private static string ReadName(ref Utf8JsonReader r, Names names) =>
        r.TokenType == JsonTokenType.String ? names.Of(ref r) : throw new JsonException($"expected a string, found {r.TokenType}");

    private static int ReadInt32(ref Utf8JsonReader r) =>
        r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var value) ? value : throw new JsonException("expected a 32-bit integer");

    private static void First<T>(T? found, string name)
    {
        if (found is not null) throw Duplicated(name);
    }

    private static JsonTokenType Next(ref Utf8JsonReader r) => r.Read() ? r.TokenType : throw new JsonException("the graph JSON ends early");

    // Moves to a property's value, refusing a null.
    private static void NextNotNull(ref Utf8JsonReader r, string name)
    {
        if (Next(ref r) == JsonTokenType.Null) throw new JsonException($"'{name}' must not be null");
    }

    // Moves to the next property name of the current object; false at its end.
    private static bool NextProperty(ref Utf8JsonReader r) => Next(ref r) switch
    {
        JsonTokenType.PropertyName => true,
        JsonTokenType.EndObject => false,
        var other => throw new JsonException($"expected a property name, found {other}"),
    };

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type, string what)
    {
        if (r.TokenType != type) throw new JsonException($"{what} must be {(type == JsonTokenType.StartObject ? "an object" : "an array")}, found {r.TokenType}");
    }

    private static JsonException Unknown(ref Utf8JsonReader r, string where) => new($"unknown member '{r.GetString()}' in {where}");

    private static JsonException Duplicated(string name) => new($"Duplicate property '{name}'");

    private static JsonException Missing(string name, string where) => new($"{where} lacks its required property '{name}'");
}
