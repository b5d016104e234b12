using System.Text;

namespace Kiln.Cache;

/// <summary>UTF-8 decoding that refuses invalid bytes instead of replacing them with U+FFFD.</summary>
public static class StrictUtf8
{
    private static readonly UTF8Encoding Encoding = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The text of <paramref name="bytes"/>; invalid UTF-8 is a <see cref="CorruptEntryException"/> naming <paramref name="file"/>.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes, string file)
    {
        try
        {
            return Encoding.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new CorruptEntryException($"{file} is not valid UTF-8");
        }
    }
}
