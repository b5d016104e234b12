namespace Kiln.Bench.LlamaCpp;

/// <summary>llama.cpp's log, kept quietly: the last lines, for the message of a failure.</summary>
internal static class NativeLog
{
    private const int Keep = 40;
    private static readonly Queue<string> Lines = new();

    public static void Add(string message)
    {
        lock (Lines)
        {
            foreach (var line in message.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Lines.Enqueue(line);
                if (Lines.Count > Keep) Lines.Dequeue();
            }
        }
    }

    public static void Clear()
    {
        lock (Lines) Lines.Clear();
    }

    /// <summary>The last <paramref name="count"/> lines that mention an error or failure, else the last lines.</summary>
    public static string Recent(int count = 5)
    {
        lock (Lines)
        {
            var errors = Lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("fail", StringComparison.OrdinalIgnoreCase)
                || l.Contains("invalid", StringComparison.OrdinalIgnoreCase)).ToList();
            var chosen = errors.Count > 0 ? errors : Lines.ToList();
            return string.Join(" | ", chosen.Skip(Math.Max(0, chosen.Count - count)).Select(l => l.Trim()));
        }
    }
}
