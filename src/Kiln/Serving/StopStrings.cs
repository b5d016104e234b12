namespace Kiln.Serving;

/// <summary>
/// Cuts streamed text at the first stop string, which is never emitted: text that could be the start of a
/// stop string is held back until the following text shows that it is not (or the stream ends).
/// </summary>
public sealed class StopStrings
{
    private readonly string[] stops;
    private string pending = "";

    public StopStrings(IEnumerable<string> stops)
    {
        this.stops = [.. stops.Where(s => s.Length > 0)];
    }

    /// <summary>True once a stop string was seen: the text before it has been emitted, nothing more will be.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a piece of text; returns what can be emitted now.</summary>
    public string Push(string piece)
    {
        if (Stopped) return "";
        pending += piece;
        var cut = stops.Select(s => pending.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        if (cut >= 0)
        {
            Stopped = true;
            var before = pending[..cut];
            pending = "";
            return before;
        }
        var held = stops.Select(HeldLength).DefaultIfEmpty(0).Max();
        var emit = pending[..^held];
        pending = pending[^held..];
        return emit;
    }

    /// <summary>At the end of the stream: whatever was held back.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : pending;
        pending = "";
        return rest;
    }

    // The longest end of the pending text that is a proper start of the stop string.
    private int HeldLength(string stop)
    {
        for (var length = Math.Min(stop.Length - 1, pending.Length); length > 0; length--)
        {
            if (pending.AsSpan(pending.Length - length).SequenceEqual(stop.AsSpan(0, length))) return length;
        }
        return 0;
    }
}
