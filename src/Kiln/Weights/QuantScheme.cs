using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Weights;

/// <summary>
/// Block formats of weight-only quantization. Each row of a [n, k] weight is cut into blocks of
/// <see cref="QuantSchemes.BlockSize"/> along k (the last block padded with zeros), and each block is
/// stored as its f16 scale (int4: and minimum) followed by its quantized values (<see cref="BlockQuantizer"/>).
/// int4 is the asymmetric format because it measured closer to float32 than the symmetric one (docs/weights.md).
/// </summary>
[JsonConverter(typeof(QuantSchemeJsonConverter))]
public enum QuantScheme
{
    /// <summary>llama.cpp's Q8_0: symmetric, q in [-127, 127], w = d·q; 34 bytes per 32 weights.</summary>
    Int8,

    /// <summary>llama.cpp's Q4_1: w = d·q + m with m the block's minimum, q in [0, 15]; 20 bytes per 32 weights.</summary>
    Int4,

    /// <summary>llama.cpp's Q4_0: w = d·(q − 8), q in [0, 15], the block's largest magnitude mapped to −8; 18 bytes per 32 weights.</summary>
    Int4Sym,
}

public static class QuantSchemes
{
    /// <summary>Weights per block, along the input dimension k.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes of one block: an f16 scale (and for int4 an f16 minimum), then the values (one byte each for int8, two per byte for int4 and int4_sym).</summary>
    public static int BlockBytes(this QuantScheme scheme) => scheme switch
    {
        QuantScheme.Int8 => 2 + BlockSize,
        QuantScheme.Int4Sym => 2 + BlockSize / 2,
        QuantScheme.Int4 => 4 + BlockSize / 2,
        _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, null),
    };

    public static long Blocks(long k) => (k + BlockSize - 1) / BlockSize;

    /// <summary>Bytes of one packed row of a weight with <paramref name="k"/> inputs.</summary>
    public static long RowBytes(this QuantScheme scheme, long k) => checked(Blocks(k) * scheme.BlockBytes());

    /// <summary>The name of the pipeline setting and the recipe's JSON ("int8", "int4", "int4_sym").</summary>
    public static string Name(this QuantScheme scheme) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(scheme.ToString());

    public static bool TryParse(string name, out QuantScheme scheme)
    {
        foreach (var candidate in Enum.GetValues<QuantScheme>())
        {
            if (candidate.Name() == name) { scheme = candidate; return true; }
        }
        scheme = default;
        return false;
    }

    /// <summary>The name of the same block format in llama.cpp and GGUF files ("q8_0", "q4_1", "q4_0").</summary>
    public static string LlamaCppName(this QuantScheme scheme) => scheme switch
    {
        QuantScheme.Int8 => "q8_0",
        QuantScheme.Int4 => "q4_1",
        QuantScheme.Int4Sym => "q4_0",
        _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, null),
    };

    /// <summary>"int8, int4, int4_sym", for error messages.</summary>
    public static string All => string.Join(", ", Enum.GetValues<QuantScheme>().Select(s => s.Name()));
}

/// <summary>Writes schemes in JSON as their lower-case names.</summary>
public sealed class QuantSchemeJsonConverter() : JsonStringEnumConverter<QuantScheme>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);
