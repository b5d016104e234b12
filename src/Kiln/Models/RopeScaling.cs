namespace Kiln.Models;

/// <summary>
/// Rotary embedding frequencies: rope_theta and the optional rope_scaling of config.json
/// (none/default, linear, llama3), computed as Hugging Face transformers does, in fp32.
/// </summary>
public sealed record RopeScaling(double Theta, int HeadDim, string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)
{
    public static RopeScaling Read(ConfigReader config, int headDim)
    {
        var theta = config.Double("rope_theta", 10000);
        if (theta <= 0) throw config.Error("rope_theta", $"must be positive, got {theta}");
        if (config.Has("partial_rotary_factor") && config.Double("partial_rotary_factor") != 1.0)
            throw config.Error("partial_rotary_factor", "partial rotary embeddings are not supported");
        var scaling = config.Object("rope_scaling");
        if (scaling is null) return new RopeScaling(theta, headDim, "default", 1, 0, 0, 0);

        // transformers accepts the legacy key "type" as well as "rope_type".
        var type = scaling.Has("rope_type") ? scaling.String("rope_type") : scaling.String("type", "default");
        return type switch
        {
            "default" => new RopeScaling(theta, headDim, type, 1, 0, 0, 0),
            "linear" => new RopeScaling(theta, headDim, type, PositiveFactor(scaling), 0, 0, 0),
            "llama3" => new RopeScaling(theta, headDim, type, PositiveFactor(scaling),
                scaling.Double("low_freq_factor"), scaling.Double("high_freq_factor"), scaling.Int("original_max_position_embeddings")),
            _ => throw scaling.Error(scaling.Has("rope_type") ? "rope_type" : "type",
                $"unsupported rope scaling '{type}' (supported: default, linear, llama3)"),
        };
    }

    /// <summary>The inverse frequencies, one per pair of rotated channels (head_dim / 2 values).</summary>
    public float[] InverseFrequencies()
    {
        var count = HeadDim / 2;
        var inv = new float[count];
        for (var i = 0; i < count; i++)
        {
            // 1 / theta^(2i / d), in fp32 like torch.arange(0, d, 2).float() / d.
            var exponent = (float)(2 * i) / HeadDim;
            inv[i] = 1.0f / MathF.Pow((float)Theta, exponent);
        }
        return Type switch
        {
            "linear" => inv.Select(f => f / (float)Factor).ToArray(),
            "llama3" => inv.Select(Llama3).ToArray(),
            _ => inv,
        };
    }

    // Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between interpolated.
    private float Llama3(float inv)
    {
        var lowFreqWavelen = (float)(OriginalMaxPositions / LowFreqFactor);
        var highFreqWavelen = (float)(OriginalMaxPositions / HighFreqFactor);
        var wavelen = 2 * MathF.PI / inv;
        if (wavelen < highFreqWavelen) return inv;
        if (wavelen > lowFreqWavelen) return inv / (float)Factor;
        var smooth = (float)((OriginalMaxPositions / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor));
        return (1 - smooth) * inv / (float)Factor + smooth * inv;
    }

    private static double PositiveFactor(ConfigReader scaling)
    {
        var factor = scaling.Double("factor");
        return factor > 0 ? factor : throw scaling.Error("factor", $"must be positive, got {factor}");
    }
}
