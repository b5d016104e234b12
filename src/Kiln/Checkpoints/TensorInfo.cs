using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Checkpoints;

/// <summary>
/// What a weight file's header says about one tensor. <see cref="DataOffset"/> is the absolute byte
/// offset of the tensor's first byte in <see cref="File"/> (header included). A tensor stored in
/// quantized blocks (a GGUF Q8_0 or Q4_0 tensor) has <see cref="Blocks"/> set: its bytes are u8
/// [rows, packed row bytes], each row its blocks in order, exactly as the <c>quantize</c> recipe step packs them.
/// </summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, string File, long DataOffset, long ByteLength, QuantScheme? Blocks = null)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape of the values the tensor holds: <see cref="Shape"/>, or for blocks the shape of the weights they pack.</summary>
    public long[] WeightShape => Blocks is { } scheme && Shape.Length > 0
        ? [.. Shape[..^1], Shape[^1] / scheme.BlockBytes() * QuantSchemes.BlockSize]
        : Shape;

    /// <summary>The number of values the tensor holds (<see cref="WeightShape"/>).</summary>
    public long WeightCount => WeightShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>How the tensor is stored, as users read it: "f32", "bf16", or the block format ("q8_0").</summary>
    public string StoredFormat => Blocks is { } scheme ? scheme.LlamaCppName() : DType.Name();
}
