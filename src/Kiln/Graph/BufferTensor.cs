namespace Kiln.Graph;

/// <summary>A small tensor computed at export (for example RoPE inverse frequencies), stored in the graph.</summary>
public sealed class BufferTensor(Value value, byte[] data)
{
    public Value Value { get; } = value;

    public string Name => Value.Name;

    /// <summary>Little-endian element bytes in row-major order.</summary>
    public byte[] Data { get; } = data;

    public static BufferTensor FromFloats(Value value, float[] values) =>
        new(value, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public float[] ToFloats() => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data).ToArray();
}
