namespace Kiln.Bench.Crash;

/// <summary>
/// Uncached runs (misses on empty roots) watched from outside: their duration, when the save window
/// opened (the first staging folder seen) and closed (the last entry seen published), polled every
/// millisecond or so, so the window is approximate; and how many save steps the run reported
/// (--cache-progress), the range the step-timed kills draw from.
/// </summary>
internal sealed record Timeline(string Run, double RunMs, double? SaveStartMs, double? SaveEndMs, int SaveSteps)
{
    /// <summary>The median of <paramref name="runs"/> measured runs (each on a new root under <paramref name="work"/>), so one slow run does not set the kill times.</summary>
    public static Timeline Measure(KilnRunner kiln, string[] arguments, string work, int runs = 3)
    {
        var timelines = Enumerable.Range(0, runs).Select(run =>
        {
            var root = Path.Combine(work, $"timeline-{Guid.NewGuid():N}");
            try { return MeasureOnce(kiln, arguments, root); }
            finally { Directory.Delete(root, recursive: true); }
        }).ToList();
        return new Timeline(string.Join(' ', arguments), Median(timelines.Select(t => t.RunMs)),
            Median(timelines.Select(t => t.SaveStartMs)), Median(timelines.Select(t => t.SaveEndMs)), timelines.Min(t => t.SaveSteps));
    }

    private static Timeline MeasureOnce(KilnRunner kiln, string[] arguments, string root)
    {
        var cache = new CacheRoot(root);
        var running = kiln.Start(arguments, root, saveProgress: true);
        double? start = null, end = null;
        var published = 0;
        while (!running.HasExited)
        {
            var now = running.ElapsedMs;
            if (start is null && cache.Leftovers().Count > 0) start = now;
            var entries = cache.Entries().Count;
            if (entries > published) (published, end) = (entries, now);
            Thread.Sleep(1);
        }
        var result = running.Wait();
        if (!result.Clean || !result.Compiled) throw new InvalidOperationException($"the timed run {string.Join(' ', arguments)} was not a clean miss: {result.Describe()}");
        return new Timeline(string.Join(' ', arguments), result.Ms, start, end, running.SaveSteps());
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double? Median(IEnumerable<double?> values)
    {
        var known = values.OfType<double>().ToList();
        return known.Count > 0 ? Median(known) : null;
    }

    public override string ToString() =>
        $"{Run}: {RunMs:F0} ms, save window {SaveStartMs:F0}..{SaveEndMs:F0} ms, {SaveSteps} save steps";
}
