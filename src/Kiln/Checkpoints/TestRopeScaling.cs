using System.Globalization;

namespace Kiln.Checkpoints;

/// <summary>
/// The rope_scaling object of a test checkpoint's config.json: "linear" (Factor only) or "llama3"
/// (Factor, LowFreqFactor, HighFreqFactor, OriginalMaxPositions), as transformers' rope_utils reads them.
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

    /// <summary>Throws <see cref="KilnException"/> naming rope_scaling when transformers would reject or misread the values.</summary>
    public void Validate()
    {
        if (Type is not ("linear" or "llama3"))
            throw new KilnException($"rope_scaling: type \"{Type}\" is not supported (linear or llama3)");
        if (!(Factor > 0) || !double.IsFinite(Factor))
            throw new KilnException($"rope_scaling: factor must be a positive number, got {Factor}");
        if (Type != "llama3") return;
        if (!(LowFreqFactor > 0) || !(HighFreqFactor > LowFreqFactor) || !double.IsFinite(HighFreqFactor))
            throw new KilnException($"rope_scaling: llama3 needs 0 < low_freq_factor < high_freq_factor, got {LowFreqFactor} and {HighFreqFactor}");
        if (OriginalMaxPositions <= 0)
            throw new KilnException($"rope_scaling: original_max_position_embeddings must be positive, got {OriginalMaxPositions}");
    }
}
