using System.Globalization;
using System.Text.Json.Nodes;

namespace Kiln.Checkpoints;

/// <summary>
/// The rope_scaling object of a test checkpoint's config.json: "linear" (Factor only) or "llama3"
/// (Factor, LowFreqFactor, HighFreqFactor, OriginalMaxPositions), as transformers' rope_utils reads
/// them. Its values are checked where every config's are: by the family reading the written config.
/// </summary>
public sealed record TestRopeScaling(string Type, double Factor, double LowFreqFactor = 0, double HighFreqFactor = 0, int OriginalMaxPositions = 0)
{
    public static TestRopeScaling Linear(double factor) => new("linear", factor);

    public static TestRopeScaling Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) =>
        new("llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositions);

    /// <summary>Parses the command-line form <c>linear:FACTOR</c> or <c>llama3:FACTOR,LOW,HIGH,ORIGINAL</c>.</summary>
    public static TestRopeScaling Parse(string text)
    {
        var colon = text.IndexOf(':');
        var type = colon < 0 ? text : text[..colon];
        var values = colon < 0 ? [] : text[(colon + 1)..].Split(',');
        return (type, values.Length) switch
        {
            ("linear", 1) => Linear(Number(values[0])),
            ("llama3", 4) => Llama3(Number(values[0]), Number(values[1]), Number(values[2]), (int)Number(values[3])),
            _ => throw new KilnException($"rope_scaling: \"{text}\" is not linear:FACTOR or llama3:FACTOR,LOW,HIGH,ORIGINAL"),
        };

        double Number(string value) =>
            double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                ? number
                : throw new KilnException($"rope_scaling: \"{value}\" in \"{text}\" is not a number");
    }

    /// <summary>The object as transformers writes it (llama3's band settings only for llama3).</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["factor"] = Factor };
        if (Type == "llama3")
        {
            json["high_freq_factor"] = HighFreqFactor;
            json["low_freq_factor"] = LowFreqFactor;
            json["original_max_position_embeddings"] = OriginalMaxPositions;
        }
        json["rope_type"] = Type;
        return json;
    }
}
