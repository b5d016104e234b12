namespace Kiln.Runtime;

/// <summary>
/// Turns generated token ids, fed one at a time, into text to print as soon as it is final.
/// </summary>
/// <remarks>
/// Each step decodes the whole sequence and emits what is new, because the decoders are not token-local:
/// byte-fallback and byte-level tokens can carry part of a UTF-8 character, and SentencePiece's decoder strips
/// the leading space of the whole text only. Text ending in U+FFFD (an incomplete character so far) is held
/// back until a later token completes it or <see cref="Flush"/> is called. With a prompt, the printed text
/// is Decode(prompt + generated) after Decode(prompt), so a space between the two is kept.
/// </remarks>
public sealed class StreamingDecoder
{
    private readonly Tokenizer tokenizer;
    private readonly List<int> ids;
    private string printed;

    /// <param name="prompt">Ids already shown to the user (they are not printed again); empty for none.</param>
    public StreamingDecoder(Tokenizer tokenizer, IReadOnlyList<int> prompt)
    {
        this.tokenizer = tokenizer;
        ids = [.. prompt];
        printed = StableText(tokenizer.Decode(ids));
    }

    /// <summary>Adds one generated id and returns the text it completes, possibly empty.</summary>
    public string Push(int id)
    {
        ids.Add(id);
        var text = StableText(tokenizer.Decode(ids));
        // Hugging Face's ByteFallback decoder turns a run of byte tokens that is not valid UTF-8 as a whole into
        // one U+FFFD per byte, including characters of the run already printed: wait until the run is whole again.
        if (!text.StartsWith(printed, StringComparison.Ordinal)) return "";
        var piece = text[printed.Length..];
        printed = text;
        return piece;
    }

    /// <summary>Returns whatever is still held back, such as a trailing incomplete character.</summary>
    /// <remarks>Text already printed cannot be taken back; if the end rewrote it, only what follows the common part is added.</remarks>
    public string Flush()
    {
        var text = tokenizer.Decode(ids);
        var piece = text[text.AsSpan().CommonPrefixLength(printed)..];
        printed = text;
        return piece;
    }

    private static string StableText(string text) => text.TrimEnd('\uFFFD');
}
