using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Models;

/// <summary>
/// Typed reads of config.json fields. Each read checks the JSON type and that the value fits the C#
/// type (an integer beyond 32 bits is refused, never wrapped; a number too large for a double, read
/// as infinity, is refused); a missing or mistyped field is an error naming the file and the field path.
/// </summary>
public sealed class ConfigReader(JsonObject config, string file)
{
    public string File { get; } = file;

    public JsonObject Json { get; } = config;

    /// <summary>True when the field is present and not null.</summary>
    public bool Has(string field) => Json[field] is not null;

    public int Int(string field, int? fallback = null) => Read(field, fallback, node => ToInt(field, node));

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int Int(string field, int min, int max, int? fallback = null)
    {
        var value = Int(field, fallback);
        return value >= min && value <= max ? value : throw Error(field, OutOfRange(value, min, max));
    }

    /// <summary>A finite number.</summary>
    public double Double(string field, double? fallback = null) => Read(field, fallback, node =>
        IsKind(node, JsonValueKind.Number) && Element(node).TryGetDouble(out var d)
            ? double.IsFinite(d) ? d : throw Error(field, $"{node.ToJsonString()} is too large for a number")
            : throw Error(field, $"expected a number, got {node.ToJsonString()}"));

    /// <summary>A number that float32 holds as a finite positive value (the graph computes in float32).</summary>
    public double PositiveFloat32(string field, double? fallback = null)
    {
        var value = Double(field, fallback);
        var single = (float)value;
        return single > 0 && float.IsFinite(single)
            ? value
            : throw Error(field, value <= 0 ? $"must be positive, got {value}" : $"{value} is outside float32's positive range");
    }

    public bool Bool(string field, bool? fallback = null) => Read(field, fallback, node =>
        IsKind(node, JsonValueKind.True) || IsKind(node, JsonValueKind.False)
            ? node.GetValue<bool>()
            : throw Error(field, $"expected true or false, got {node.ToJsonString()}"));

    public string String(string field, string? fallback = null)
    {
        var node = Json[field];
        if (node is null) return fallback ?? throw Error(field, "is required");
        return IsKind(node, JsonValueKind.String) ? node.GetValue<string>() : throw Error(field, $"expected a string, got {node.ToJsonString()}");
    }

    /// <summary>A list of strings; empty when absent or null.</summary>
    public string[] Strings(string field) => Json[field] switch
    {
        null => [],
        JsonArray array => array.Select((n, i) => n is not null && IsKind(n, JsonValueKind.String)
            ? n.GetValue<string>()
            : throw Error($"{field}[{i}]", $"expected a string, got {n?.ToJsonString() ?? "null"}")).ToArray(),
        var other => throw Error(field, $"expected a list of strings, got {other.ToJsonString()}"),
    };

    /// <summary>Token ids (an id or a list of ids, as eos_token_id may be), each in [0, <paramref name="vocabSize"/>); empty when absent or null.</summary>
    public int[] TokenIds(string field, int vocabSize)
    {
        var ids = Json[field] switch
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

    public ConfigReader? Object(string field) => Json[field] switch
    {
        null => null,
        JsonObject o => new ConfigReader(o, File) { Prefix = Prefix + field + "." },
        var other => throw Error(field, $"expected an object, got {other.ToJsonString()}"),
    };

    /// <summary>The path of a nested object, so errors name "rope_scaling.factor".</summary>
    private string Prefix { get; init; } = "";

    public KilnException Error(string field, string problem) => KilnException.InFile(File, Prefix + field, problem);

    private static string OutOfRange(long value, long min, long max) =>
        value < min ? min == 1 ? $"must be positive, got {value}" : $"must be at least {min}, got {value}" : $"{value} is above the supported maximum of {max}";

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

    private T Read<T>(string field, T? fallback, Func<JsonNode, T> convert) where T : struct
    {
        var node = Json[field];
        return node is null ? fallback ?? throw Error(field, "is required") : convert(node);
    }
}
