using System.Collections.Concurrent;

namespace Kiln.Weights;

/// <summary>
/// The copies of a recipe step (the members of a fused projection, the column blocks of long rows) run on every
/// core, in pieces of at most 2 MiB: most of a copy into fresh memory is the kernel's work on the pages it first
/// touches (zeroing them, and for a weights file being saved, its page-cache folios), which runs on as many cores as
/// fault at once. Small copies go in runs of about one piece each.
/// </summary>
public static unsafe class ParallelCopy
{
    private const long PieceBytes = 2L << 20;

    /// <summary><see cref="Bytes"/> bytes from <see cref="From"/> to <see cref="To"/>; the ranges of one run do not overlap.</summary>
    public readonly record struct Range(nint From, nint To, long Bytes);

    /// <summary>Makes every copy in <paramref name="ranges"/>; returns once all are done.</summary>
    public static void Run(IReadOnlyList<Range> ranges)
    {
        var pieces = new List<Range>();
        foreach (var range in ranges)
            for (long at = 0; at < range.Bytes; at += PieceBytes)
                pieces.Add(new Range(range.From + (nint)at, range.To + (nint)at, Math.Min(PieceBytes, range.Bytes - at)));
        if (pieces.Count == 0) return;
        var total = pieces.Sum(p => p.Bytes);
        if (total <= PieceBytes || Environment.ProcessorCount == 1)
        {
            foreach (var piece in pieces) Copy(piece);
            return;
        }
        var perRun = (int)Math.Max(1, PieceBytes / Math.Max(1, pieces[0].Bytes));
        Parallel.ForEach(Partitioner.Create(0, pieces.Count, perRun), run =>
        {
            for (var i = run.Item1; i < run.Item2; i++) Copy(pieces[i]);
        });
    }

    private static void Copy(Range piece) => Buffer.MemoryCopy((void*)piece.From, (void*)piece.To, piece.Bytes, piece.Bytes);
}
