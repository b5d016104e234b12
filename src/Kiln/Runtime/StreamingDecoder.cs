namespace Kiln.Runtime;

/// <summary>
/// Turns generated token ids, fed one at a time, into text to print as soon as it is final, decoding only
/// a few tokens per step whatever the length of the text so far.
/// </summary>
/// <remarks>
/// The decoders are not token-local: byte-fallback and byte-level tokens can carry part of a UTF-8
/// character, and SentencePiece's decoder strips the leading space of the text it is given. So each step
/// decodes a short window twice, from the same first token (a few tokens before the last printed one):
/// without and with the new tokens; what the second adds to the first is the new text, and both start
/// the same way, so a space at the window's start is treated alike (Hugging Face text-generation-inference
/// and vLLM stream this way). Text ending in U+FFFD (an incomplete character so far) is held back until a
/// later token completes it or <see cref="Flush"/> is called. With a prompt, the window starts inside the
/// prompt, so the printed text is what Decode(prompt + generated) adds to Decode(prompt).
/// </remarks>
public sealed class StreamingDecoder
{
    // Tokens of context before the printed end: enough for a character split over byte tokens (4 bytes)
    // and for the decoder's treatment of the window's first token to match the full text's.
    private const int Context = 5;

    private readonly Tokenizer tokenizer;
    // The window: a few printed ids, then those not printed yet.
    private readonly List<int> ids;
    private int printedCount;

    /// <param name="prompt">Ids already shown to the user (they are not printed again); empty for none.</param>
    public StreamingDecoder(Tokenizer tokenizer, IReadOnlyList<int> prompt)
    {
        this.tokenizer = tokenizer;
        ids = [.. prompt.Skip(Math.Max(0, prompt.Count - Context))];
        printedCount = ids.Count;
    }

    /// <summary>Adds one generated id and returns the text it completes, possibly empty.</summary>
    public string Push(int id)
    {
        ids.Add(id);
        var printed = tokenizer.Decode(ids.GetRange(0, printedCount));
        var text = tokenizer.Decode(ids);
        // Hugging Face's ByteFallback decoder turns a run of byte tokens that is not valid UTF-8 as a whole into
        // one U+FFFD per byte: wait until the character is whole, or the text no longer extends what was printed.
        if (text.Length <= printed.Length || text.EndsWith('\uFFFD') || !text.StartsWith(printed, StringComparison.Ordinal)) return "";
        Advance();
        return text[printed.Length..];
    }

    /// <summary>Returns whatever is still held back, such as a trailing incomplete character.</summary>
    /// <remarks>Text already printed cannot be taken back; if the end rewrote it, only what follows the common part is added.</remarks>
    public string Flush()
    {
        var printed = tokenizer.Decode(ids.GetRange(0, printedCount));
        var text = tokenizer.Decode(ids);
        Advance();
        return text[text.AsSpan().CommonPrefixLength(printed)..];
    }

    // Everything so far is printed: the next window starts a few tokens before its end; older ids are dropped.
    private void Advance()
    {
        ids.RemoveRange(0, Math.Max(0, ids.Count - Context));
        printedCount = ids.Count;
    }
}
