namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// One metadata value. A scalar holds its CLR value (byte, sbyte, ushort, short, uint, int, float, bool,
/// string, ulong, long or double); an array (<see cref="Type"/> <see cref="GgufValueType.Array"/>) holds a
/// typed CLR array of its <see cref="ElementType"/> (byte[], ..., string[]). Arrays of arrays are not
/// read, as in llama.cpp.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>The type as ggml prints it: "u32", or "arr[str]" for an array.</summary>
    public string TypeName => IsArray ? $"arr[{ElementType.Name()}]" : Type.Name();
}
