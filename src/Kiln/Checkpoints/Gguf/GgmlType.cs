using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Checkpoints.Gguf;

/// <summary>The tensor types of ggml (ggml_type), with the numbers GGUF files store. Gaps are types ggml has removed.</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
}

/// <summary>The ggml types Kiln reads, and what each becomes.</summary>
public static class GgmlTypes
{
    /// <summary>"F32, F16, BF16, Q8_0, Q4_0", for error messages.</summary>
    public const string Supported = "F32, F16, BF16, Q8_0, Q4_0";

    /// <summary>The name ggml prints ("Q8_0"), or the number of a type it does not know.</summary>
    public static string Name(this GgmlType type) => Enum.IsDefined(type) ? type.ToString() : $"{(uint)type} (unknown)";

    /// <summary>
    /// What a tensor of <paramref name="type"/> is to Kiln: a float dtype, or u8 bytes packed in the blocks of
    /// a <see cref="QuantScheme"/> (ggml's Q8_0 and Q4_0 blocks are byte for byte Kiln's int8 and int4_sym).
    /// False for every other type.
    /// </summary>
    public static bool TryRead(GgmlType type, out DType dtype, out QuantScheme? blocks)
    {
        (dtype, blocks) = type switch
        {
            GgmlType.F32 => (DType.F32, (QuantScheme?)null),
            GgmlType.F16 => (DType.F16, null),
            GgmlType.BF16 => (DType.BF16, null),
            GgmlType.Q8_0 => (DType.U8, QuantScheme.Int8),
            GgmlType.Q4_0 => (DType.U8, QuantScheme.Int4Sym),
            _ => (DType.U8, null),
        };
        return type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0;
    }
}
