using Kiln.Checkpoints;

namespace Kiln.Models.Phi3;

/// <summary>
/// Phi-3's LongRoPE (rope_scaling type "longrope"), as transformers computes it: one rescaling factor per
/// rotated pair, <see cref="ShortFactor"/> while every position of a call is below
/// <see cref="OriginalMaxPositions"/> and <see cref="LongFactor"/> once one is not, and cos/sin multiplied by
/// <see cref="AttentionFactor"/>.
/// </summary>
public sealed record LongRope(double Theta, int HeadDim, double[] ShortFactor, double[] LongFactor, int OriginalMaxPositions, double AttentionFactor)
{
    /// <summary>
    /// Reads rope_scaling: null or type "default" is plain rope (null here); "longrope" needs short_factor and
    /// long_factor of head_dim / 2 positive numbers; any other type is an error naming it.
    /// attention_factor, when absent, is sqrt(1 + ln(s) / ln(original)) for s = max_position_embeddings /
    /// original_max_position_embeddings above 1, else 1 (transformers' rope_utils for Phi-3).
    /// </summary>
    public static LongRope? Read(ConfigReader config, double theta, int headDim, int maxPositions, int originalMaxPositions)
    {
        var scaling = config.Object("rope_scaling", TestValue.Fixed(null));
        if (scaling is null) return null;
        // transformers accepts the legacy key "type" as well as "rope_type".
        var typeField = scaling.Has("rope_type") ? "rope_type" : "type";
        var type = scaling.String(typeField, "default");
        if (type == "default") return null;
        if (type != "longrope") throw scaling.Error(typeField, $"unsupported rope scaling '{type}' (supported: longrope)");

        double[] Factors(string field)
        {
            var factors = scaling.PositiveFloat32s(field);
            return factors.Length == headDim / 2 ? factors : throw scaling.Error(field, $"has {factors.Length} numbers; head_dim {headDim} needs {headDim / 2}");
        }
        var shortFactor = Factors("short_factor");
        var longFactor = Factors("long_factor");

        double attentionFactor;
        if (scaling.Has("attention_factor"))
        {
            attentionFactor = scaling.PositiveFloat32("attention_factor");
        }
        else
        {
            var stretch = (double)maxPositions / originalMaxPositions;
            attentionFactor = stretch <= 1 ? 1 : Math.Sqrt(1 + Math.Log(stretch) / Math.Log(originalMaxPositions));
            if (!double.IsFinite(attentionFactor))
                throw config.Error("original_max_position_embeddings", $"{originalMaxPositions} leaves LongRoPE's attention factor undefined (it must be at least 2)");
        }
        return new LongRope(theta, headDim, shortFactor, longFactor, originalMaxPositions, attentionFactor);
    }

    /// <summary>1 / (factor_i * theta^(2i / d)) in fp32 with the short factors, one per rotated pair.</summary>
    public float[] ShortInverseFrequencies() => InverseFrequencies(ShortFactor);

    /// <summary>The same with the long factors.</summary>
    public float[] LongInverseFrequencies() => InverseFrequencies(LongFactor);

    private float[] InverseFrequencies(double[] factors)
    {
        var inv = new float[HeadDim / 2];
        for (var i = 0; i < inv.Length; i++)
        {
            // As torch: arange(0, d, 2).float() / d, base ** that, times the fp32 factor, inverted, all in fp32.
            var exponent = (float)(2 * i) / HeadDim;
            inv[i] = 1.0f / ((float)factors[i] * MathF.Pow((float)Theta, exponent));
        }
        return inv;
    }
}
