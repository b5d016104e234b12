using Kiln.Graph;

namespace Kiln.Compile;

/// <summary>
/// The data of an initializer declared with <see cref="OnnxGraphBuilder.AddExternalInitializer"/>:
/// <see cref="ByteLength"/> bytes at <see cref="Data"/>, native memory that the caller owns and keeps
/// alive and unchanged for as long as the session that uses it.
/// </summary>
public sealed record ExternalInitializer(string Name, DType DType, long[] Shape, nint Data, long ByteLength)
{
    public long ExpectedByteLength => Shape.Aggregate((long)DType.ByteSize(), (a, b) => a * b);
}
