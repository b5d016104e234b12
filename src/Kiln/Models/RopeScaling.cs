using Kiln.Checkpoints;

namespace Kiln.Models;

/// <summary>
/// Rotary embedding frequencies: rope_theta and the optional rope_scaling of config.json
/// (none/default, linear, llama3), computed as Hugging Face transformers does, in fp32.
/// </summary>
public sealed record RopeScaling(double Theta, int HeadDim, string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)
{
    /// <summary>
    /// Reads rope_theta and rope_scaling with the checks of transformers' rope_utils validation, made
    /// errors: factor >= 1; for llama3 also low_freq_factor > 0, high_freq_factor > low_freq_factor and
    /// original_max_position_embeddings > 0. Every number must be finite and positive in float32.
    /// <paramref name="scalingTest"/>: what a test checkpoint writes as rope_scaling (nothing when null).
    /// </summary>
    public static RopeScaling Read(ConfigReader config, int headDim, TestValue? scalingTest)
    {
        var theta = ReadTheta(config);
        var scaling = config.Object("rope_scaling", scalingTest);
        if (scaling is null) return new RopeScaling(theta, headDim, "default", 1, 0, 0, 0);

        // transformers accepts the legacy key "type" as well as "rope_type".
        var type = scaling.Has("rope_type") ? scaling.String("rope_type") : scaling.String("type", "default");
        switch (type)
        {
            case "default":
                return new RopeScaling(theta, headDim, type, 1, 0, 0, 0);
            case "linear":
                return new RopeScaling(theta, headDim, type, ReadFactor(scaling), 0, 0, 0);
            case "llama3":
                var factor = ReadFactor(scaling);
                var low = scaling.PositiveFloat32("low_freq_factor");
                var high = scaling.PositiveFloat32("high_freq_factor");
                if (high <= low) throw scaling.Error("high_freq_factor", $"{high} must be greater than low_freq_factor {low}");
                var original = scaling.Int("original_max_position_embeddings", 1, ConfigLimits.MaxPositions);
                return new RopeScaling(theta, headDim, type, factor, low, high, original);
            default:
                throw scaling.Error(scaling.Has("rope_type") ? "rope_type" : "type",
                    $"unsupported rope scaling '{type}' (supported: default, linear, llama3)");
        }
    }

    /// <summary>rope_theta, with rotary embeddings over the whole head (a partial_rotary_factor other than 1 is an error).</summary>
    public static double ReadTheta(ConfigReader config)
    {
        var theta = config.PositiveFloat32("rope_theta", 10000, test: TestOption.RopeTheta);
        if (config.Has("partial_rotary_factor") && config.Double("partial_rotary_factor") != 1.0)
            throw config.Error("partial_rotary_factor", "partial rotary embeddings are not supported");
        return theta;
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

    // transformers: "factor must be a float >= 1" (a smaller one would shrink the context, not stretch it).
    private static double ReadFactor(ConfigReader scaling)
    {
        var factor = scaling.PositiveFloat32("factor");
        return factor >= 1 ? factor : throw scaling.Error("factor", $"must be at least 1, got {factor}");
    }
}
