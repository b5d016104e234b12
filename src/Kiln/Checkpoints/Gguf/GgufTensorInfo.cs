namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// One tensor of a GGUF file, as its header describes it. <see cref="Dims"/> are in GGUF order, ne[0]
/// first: the contiguous dimension, so a PyTorch [out, in] matrix is stored with dims [in, out].
/// <see cref="DataOffset"/> is absolute in the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, long DataOffset, long ByteLength)
{
    /// <summary>The dims in PyTorch order (outermost first), as Hugging Face checkpoints list shapes.</summary>
    public long[] Shape => [.. Dims.Reverse()];
}
