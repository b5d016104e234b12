using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Weights;

/// <summary>
/// Re-lays int4_sym blocks (u8 [n, blocks · 18], <see cref="BlockQuantizer"/>: an f16 scale, then weight i
/// of the block in the low nibble of byte i and weight i + 16 in its high nibble) as one of the two tensors
/// ONNX Runtime's <c>com.microsoft::MatMulNBits</c> (4 bits, block 32, zero point 8) reads:
/// <see cref="NBitsPart.Data"/>, u8 [n, blocks, 16] with weights 2j and 2j + 1 in the low and high nibble
/// of byte j; or <see cref="NBitsPart.Scales"/>, f32 [n, blocks]. The values are the same: w = d·(q − 8).
/// </summary>
public sealed record NBitsLayoutStep(NBitsPart Part) : RecipeStep
{
    public override string ToString() => $"nbits_layout({Part.Name()})";
}

/// <summary>Which of MatMulNBits's tensors <see cref="NBitsLayoutStep"/> makes.</summary>
[JsonConverter(typeof(NBitsPartJsonConverter))]
public enum NBitsPart
{
    Data,
    Scales,
}

public static class NBitsParts
{
    /// <summary>"data" or "scales", as in the recipe's JSON.</summary>
    public static string Name(this NBitsPart part) => JsonNamingPolicy.SnakeCaseLower.ConvertName(part.ToString());
}

/// <summary>Writes parts in JSON as their lower-case names.</summary>
public sealed class NBitsPartJsonConverter() : JsonStringEnumConverter<NBitsPart>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);
