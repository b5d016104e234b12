using System.Buffers.Binary;
using System.Text;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// Reads little-endian values from the start of a GGUF file, checking each against the bytes left, so
/// a truncated file or a huge length is an error naming the file and field, never an out-of-range read
/// or an allocation larger than the file.
/// </summary>
internal ref struct GgufReader(string path, ReadOnlySpan<byte> bytes, long fileLength)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _bytes = bytes;

    /// <summary>Bytes read so far: the offset of the next value in the file.</summary>
    public int Position { get; private set; }

    /// <summary>Bytes left to read.</summary>
    public readonly long Remaining => _bytes.Length - Position;

    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    /// <summary>A u64 count or length that must fit <paramref name="limit"/> (at most what the bytes left can hold).</summary>
    public int Count(string field, string what, long limit)
    {
        var count = U64(field);
        if (count > (ulong)Math.Max(0, limit))
            throw Error(field, $"{count} {what} cannot fit in the {Remaining} bytes left of the header");
        return (int)count;
    }

    /// <summary>A string: u64 byte length, then that many bytes of UTF-8.</summary>
    public string String(string field)
    {
        var length = Count(field, "bytes of string", Math.Min(Remaining - 8, int.MaxValue));
        var utf8 = Take(length, field);
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            throw Error(field, "string is not valid UTF-8");
        }
    }

    /// <summary>The next <paramref name="count"/> bytes.</summary>
    public ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining)
        {
            throw Error(field, _bytes.Length < fileLength
                ? $"the header runs past its limit of {_bytes.Length} bytes"
                : $"truncated: needs {count} bytes at offset {Position}, the file has {fileLength}");
        }
        var span = _bytes.Slice(Position, count);
        Position += count;
        return span;
    }

    public readonly KilnException Error(string field, string problem) => KilnException.InFile(path, field, problem);
}
