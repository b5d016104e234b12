using System.Text.Json.Nodes;

namespace Kiln.Tests.Reference;

/// <summary>
/// config.json's rope_scaling as transformers' rope_utils reads it: "rope_type" (or the legacy
/// "type") linear or llama3. A null or "default" entry means unscaled frequencies.
/// </summary>
public sealed record ReferenceRopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)
{
    public static ReferenceRopeScaling? Read(JsonObject? json)
    {
        if (json is null) return null;
        var type = (json["rope_type"] ?? json["type"])?.GetValue<string>() ?? "default";
        return type switch
        {
            "default" => null,
            "linear" => new ReferenceRopeScaling(type, json["factor"]!.GetValue<double>(), 0, 0, 0),
            "llama3" => new ReferenceRopeScaling(type, json["factor"]!.GetValue<double>(), json["low_freq_factor"]!.GetValue<double>(),
                json["high_freq_factor"]!.GetValue<double>(), json["original_max_position_embeddings"]!.GetValue<int>()),
            _ => throw new NotSupportedException($"rope_scaling {type}"),
        };
    }
}
