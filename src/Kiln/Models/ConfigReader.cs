using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Models;

/// <summary>Typed reads of config.json fields; a missing or mistyped field is an error naming file and field.</summary>
public sealed class ConfigReader(JsonObject config, string file)
{
    public string File { get; } = file;

    public JsonObject Json { get; } = config;

    public bool Has(string field) => Json[field] is not null;

    public int Int(string field, int? fallback = null) => (int)Long(field, fallback);

    public long Long(string field, long? fallback = null) => Read(field, fallback, node =>
        node is JsonValue v && v.TryGetValue<long>(out var l) ? l
        : node is JsonValue d && d.TryGetValue<double>(out var x) && x == Math.Floor(x) ? (long)x
        : throw Error(field, $"expected an integer, got {node.ToJsonString()}"));

    public double Double(string field, double? fallback = null) => Read(field, fallback, node =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? d : throw Error(field, $"expected a number, got {node.ToJsonString()}"));

    public bool Bool(string field, bool? fallback = null) => Read(field, fallback, node =>
        node is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw Error(field, $"expected true or false, got {node.ToJsonString()}"));

    public string String(string field, string? fallback = null) => Read(field, fallback, node =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Error(field, $"expected a string, got {node.ToJsonString()}"));

    /// <summary>An integer or a list of integers (eos_token_id may be either).</summary>
    public int[] Ints(string field) => Json[field] switch
    {
        null => [],
        JsonArray array => array.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Error(field, "expected integers")).ToArray(),
        JsonValue v when v.TryGetValue<int>(out var single) => [single],
        var other => throw Error(field, $"expected an integer or a list, got {other.ToJsonString()}"),
    };

    public ConfigReader? Object(string field) => Json[field] switch
    {
        null => null,
        JsonObject o => new ConfigReader(o, File) { Prefix = Prefix + field + "." },
        var other => throw Error(field, $"expected an object, got {other.ToJsonString()}"),
    };

    /// <summary>The path of a nested object, so errors name "rope_scaling.factor".</summary>
    private string Prefix { get; init; } = "";

    public KilnException Error(string field, string problem) => KilnException.InFile(File, Prefix + field, problem);

    private T Read<T>(string field, T? fallback, Func<JsonNode, T> convert) where T : struct
    {
        var node = Json[field];
        if (node is null) return fallback ?? throw Error(field, "is required");
        try
        {
            return convert(node);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            throw Error(field, $"cannot read {node.ToJsonString()}");
        }
    }

    private string Read(string field, string? fallback, Func<JsonNode, string> convert)
    {
        var node = Json[field];
        return node is null ? fallback ?? throw Error(field, "is required") : convert(node);
    }
}
