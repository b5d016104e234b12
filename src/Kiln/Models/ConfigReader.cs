using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;

namespace Kiln.Models;

/// <summary>
/// Typed reads of config.json fields. Each read checks the JSON type and that the value fits the C#
/// type (an integer beyond 32 bits is refused, never wrapped; a number too large for a double, read
/// as infinity, is refused); a missing or mistyped field is an error naming the file and the field path.
/// A family's description reads its config through this once, field by field; each read also says what
/// <c>kiln testmodel</c> writes into the field (its <c>test</c> value), which a reader made by
/// <see cref="ForTestModel"/> writes just before reading it back, so a test checkpoint's config is
/// written and checked by the very reads that accept any other.
/// </summary>
public sealed class ConfigReader(JsonObject config, string file)
{
    // Set when the reader writes the config of a test checkpoint as it reads it.
    private TestModelConfig? _test;

    public string File { get; } = file;

    public JsonObject Json { get; } = config;

    /// <summary>A reader over <paramref name="test"/>'s config, which it fills field by field as the family reads it.</summary>
    public static ConfigReader ForTestModel(TestModelConfig test) => new(test.Json, Checkpoint.ConfigFileName) { _test = test };

    /// <summary>True when the field is present and not null.</summary>
    public bool Has(string field) => Json[field] is not null;

    public int Int(string field, int? fallback = null, TestValue? test = null) => Read(field, fallback, test, node => ToInt(field, node));

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int Int(string field, int min, int max, int? fallback = null, TestValue? test = null)
    {
        var value = Int(field, fallback, test);
        return value >= min && value <= max ? value : throw Error(field, OutOfRange(value, min, max));
    }

    /// <summary>
    /// An integer in [<paramref name="min"/>, <paramref name="max"/>], or null when the field is null;
    /// <paramref name="absent"/> when the file has no such key (transformers' default may differ from null).
    /// </summary>
    public int? OptionalInt(string field, int min, int max, int? absent = null, TestValue? test = null)
    {
        var node = Node(field, test);
        if (!Json.ContainsKey(field)) return absent;
        return node is null ? null : Int(field, min, max);
    }

    /// <summary>A finite number.</summary>
    public double Double(string field, double? fallback = null, TestValue? test = null) => Read(field, fallback, test, node =>
        IsKind(node, JsonValueKind.Number) && Element(node).TryGetDouble(out var d)
            ? double.IsFinite(d) ? d : throw Error(field, $"{node.ToJsonString()} is too large for a number")
            : throw Error(field, $"expected a number, got {node.ToJsonString()}"));

    /// <summary>A number that float32 holds as a finite positive value (the graph computes in float32).</summary>
    public double PositiveFloat32(string field, double? fallback = null, TestValue? test = null)
    {
        var value = Double(field, fallback, test);
        var single = (float)value;
        return single > 0 && float.IsFinite(single)
            ? value
            : throw Error(field, value <= 0 ? $"must be positive, got {value}" : $"{value} is outside float32's positive range");
    }

    public bool Bool(string field, bool? fallback = null, TestValue? test = null) => Read(field, fallback, test, node =>
        IsKind(node, JsonValueKind.True) || IsKind(node, JsonValueKind.False)
            ? node.GetValue<bool>()
            : throw Error(field, $"expected true or false, got {node.ToJsonString()}"));

    public string String(string field, string? fallback = null, TestValue? test = null)
    {
        var node = Node(field, test);
        if (node is null) return fallback ?? throw Error(field, "is required");
        return IsKind(node, JsonValueKind.String) ? node.GetValue<string>() : throw Error(field, $"expected a string, got {node.ToJsonString()}");
    }

    /// <summary>A list of strings; empty when absent or null.</summary>
    public string[] Strings(string field, TestValue? test = null) => Node(field, test) switch
    {
        null => [],
        JsonArray array => array.Select((n, i) => n is not null && IsKind(n, JsonValueKind.String)
            ? n.GetValue<string>()
            : throw Error($"{field}[{i}]", $"expected a string, got {n?.ToJsonString() ?? "null"}")).ToArray(),
        var other => throw Error(field, $"expected a list of strings, got {other.ToJsonString()}"),
    };

    /// <summary>A list of numbers that float32 holds as finite positive values (LongRoPE's per-frequency factors); empty when absent or null.</summary>
    public double[] PositiveFloat32s(string field, TestValue? test = null) => Node(field, test) switch
    {
        null => [],
        JsonArray array => array.Select((n, i) =>
        {
            if (n is null || !IsKind(n, JsonValueKind.Number) || !Element(n).TryGetDouble(out var d))
                throw Error($"{field}[{i}]", $"expected a number, got {n?.ToJsonString() ?? "null"}");
            var single = (float)d;
            return single > 0 && float.IsFinite(single) ? d : throw Error($"{field}[{i}]", $"must be a positive float32, got {d}");
        }).ToArray(),
        var other => throw Error(field, $"expected a list of numbers, got {other.ToJsonString()}"),
    };

    /// <summary>Token ids (an id or a list of ids, as eos_token_id may be), each in [0, <paramref name="vocabSize"/>); empty when absent or null.</summary>
    public int[] TokenIds(string field, int vocabSize, TestValue? test = null)
    {
        var ids = Node(field, test) switch
        {
            null => [],
            JsonArray array => array.Select((n, i) => n is null ? throw Error($"{field}[{i}]", "expected an integer, got null") : ToInt($"{field}[{i}]", n)).ToArray(),
            var single => [ToInt(field, single)],
        };
        foreach (var id in ids)
        {
            if (id < 0 || id >= vocabSize) throw Error(field, $"token id {id} is outside the vocabulary (0..{vocabSize - 1}, vocab_size of config.json)");
        }
        return ids;
    }

    public ConfigReader? Object(string field, TestValue? test = null) => Node(field, test) switch
    {
        null => null,
        JsonObject o => new ConfigReader(o, File) { Prefix = Prefix + field + ".", _test = _test },
        var other => throw Error(field, $"expected an object, got {other.ToJsonString()}"),
    };

    /// <summary>
    /// A field of the family's transformers configuration that Kiln does not read (dropout, training
    /// settings): nothing when reading; a test checkpoint gets <paramref name="test"/>, so its file reads like one transformers wrote.
    /// </summary>
    public void Unread(string field, TestValue test) => Node(field, test);

    /// <summary>The path of a nested object, so errors name "rope_scaling.factor".</summary>
    private string Prefix { get; init; } = "";

    /// <summary>An error about <paramref name="field"/>; for a test checkpoint, about the option the field was written from.</summary>
    public KilnException Error(string field, string problem) =>
        _test?.OptionOf(Prefix + field) is { } option ? new KilnException($"{option}: {problem}") : KilnException.InFile(File, Prefix + field, problem);

    private static string OutOfRange(long value, long min, long max) =>
        value < min ? min == 1 ? $"must be positive, got {value}" : $"must be at least {min}, got {value}" : $"{value} is above the supported maximum of {max}";

    // The field's node, written first when this reader fills a test checkpoint's config.
    private JsonNode? Node(string field, TestValue? test)
    {
        if (_test is not null && test is not null) _test.Write(Json, field, Prefix + field, test);
        return Json[field];
    }

    // An integer written as 64 or 64.0 (Python may write either), within int's range.
    private int ToInt(string field, JsonNode node)
    {
        if (IsKind(node, JsonValueKind.Number))
        {
            var value = Element(node);
            if (value.TryGetInt32(out var i)) return i;
            if (value.TryGetDouble(out var d) && double.IsFinite(d) && d == Math.Floor(d))
            {
                return d >= int.MinValue && d <= int.MaxValue ? (int)d : throw Error(field, $"{node.ToJsonString()} does not fit a 32-bit integer");
            }
        }
        throw Error(field, $"expected an integer, got {node.ToJsonString()}");
    }

    // Numbers read the same whether the node came from a file or was built in code.
    private static JsonElement Element(JsonNode node)
    {
        using var document = JsonDocument.Parse(node.ToJsonString());
        return document.RootElement.Clone();
    }

    private static bool IsKind(JsonNode node, JsonValueKind kind) => node is JsonValue && node.GetValueKind() == kind;

    private T Read<T>(string field, T? fallback, TestValue? test, Func<JsonNode, T> convert) where T : struct
    {
        var node = Node(field, test);
        return node is null ? fallback ?? throw Error(field, "is required") : convert(node);
    }
}
