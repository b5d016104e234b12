using Kiln.Runtime;

namespace Kiln.Serving;

/// <summary>
/// The text of a generated sequence as it streams: token ids go in one at a time, pieces of text come out
/// as soon as they are final (<see cref="StreamingDecoder"/>), cut before the first stop string
/// (<see cref="StopStrings"/>).
/// </summary>
public sealed class CompletionText(Tokenizer tokenizer, IReadOnlyList<int> promptIds, IEnumerable<string> stops)
{
    private readonly StreamingDecoder decoder = new(tokenizer, promptIds);
    private readonly StopStrings stopStrings = new(stops);

    /// <summary>True once a stop string ended the text: the reader should end the sequence.</summary>
    public bool Stopped => stopStrings.Stopped;

    /// <summary>The text one more token completes (possibly empty).</summary>
    public string Push(int id) => stopStrings.Push(decoder.Push(id));

    /// <summary>At the end of the sequence: whatever was held back.</summary>
    public string Flush() => Stopped ? "" : stopStrings.Push(decoder.Flush()) + stopStrings.Flush();
}
