using Kiln.Graph;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace Kiln.Compile;

/// <summary>Maps Kiln's <see cref="DType"/> to ONNX's element type codes and ORT's enum (the same numbers).</summary>
public static class OnnxTypes
{
    public static TensorProto.Types.DataType ToOnnx(this DType type) => type switch
    {
        DType.F32 => TensorProto.Types.DataType.Float,
        DType.F16 => TensorProto.Types.DataType.Float16,
        DType.BF16 => TensorProto.Types.DataType.Bfloat16,
        DType.F64 => TensorProto.Types.DataType.Double,
        DType.I64 => TensorProto.Types.DataType.Int64,
        DType.I32 => TensorProto.Types.DataType.Int32,
        DType.I16 => TensorProto.Types.DataType.Int16,
        DType.I8 => TensorProto.Types.DataType.Int8,
        DType.U64 => TensorProto.Types.DataType.Uint64,
        DType.U32 => TensorProto.Types.DataType.Uint32,
        DType.U16 => TensorProto.Types.DataType.Uint16,
        DType.U8 => TensorProto.Types.DataType.Uint8,
        DType.Bool => TensorProto.Types.DataType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    // ORT's TensorElementType uses ONNX's TensorProto.DataType numbering.
    public static TensorElementType ToOrt(this DType type) => (TensorElementType)(int)type.ToOnnx();

    /// <summary>The <see cref="DType"/> of a C# element type used for typed constants.</summary>
    public static DType Of<T>() where T : unmanaged => default(T) switch
    {
        float => DType.F32,
        double => DType.F64,
        Half => DType.F16,
        long => DType.I64,
        int => DType.I32,
        short => DType.I16,
        sbyte => DType.I8,
        ulong => DType.U64,
        uint => DType.U32,
        ushort => DType.U16,
        byte => DType.U8,
        bool => DType.Bool,
        _ => throw new NotSupportedException($"no ONNX element type for {typeof(T).Name}"),
    };
}
