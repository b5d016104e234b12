namespace Kiln.Graph;

/// <summary>Element types of values, parameters and checkpoint tensors.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(DTypeJsonConverter))]
public enum DType
{
    F32, F16, BF16, F64,
    I64, I32, I16, I8,
    U64, U32, U16, U8,
    Bool,
}

public static class DTypeExtensions
{
    public static int ByteSize(this DType type) => type switch
    {
        DType.F64 or DType.I64 or DType.U64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 or DType.U16 => 2,
        DType.I8 or DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    public static bool IsFloat(this DType type) => type is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    /// <summary>The lower-case name used in Kiln's text and JSON forms ("f32", "bf16", "i64").</summary>
    public static string Name(this DType type) => type.ToString().ToLowerInvariant();

    public static bool TryParse(string name, out DType type) =>
        Enum.TryParse(name, ignoreCase: true, out type) && !int.TryParse(name, out _);

    /// <summary>The dtype string of the safetensors format ("F32", "BF16", "I64", "BOOL").</summary>
    public static string SafetensorsName(this DType type) => type == DType.Bool ? "BOOL" : type.ToString().ToUpperInvariant();

    public static bool TryParseSafetensors(string name, out DType type)
    {
        foreach (var candidate in Enum.GetValues<DType>())
        {
            if (candidate.SafetensorsName() == name) { type = candidate; return true; }
        }
        type = default;
        return false;
    }
}

/// <summary>Writes dtypes in JSON as their lower-case names ("f32", "bf16").</summary>
public sealed class DTypeJsonConverter() : System.Text.Json.Serialization.JsonStringEnumConverter<DType>(System.Text.Json.JsonNamingPolicy.SnakeCaseLower);
