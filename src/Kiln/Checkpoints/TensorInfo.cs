using Kiln.Graph;

namespace Kiln.Checkpoints;

/// <summary>
/// What a safetensors header says about one tensor. <see cref="DataOffset"/> is the absolute byte
/// offset of the tensor's first byte in <see cref="File"/> (header included).
/// </summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, string File, long DataOffset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
