namespace Kiln.Bench.Crash;

/// <summary>
/// Uncached runs (misses on empty roots) watched from outside: their duration, and when the save
/// window opened (the first staging folder seen) and closed (the last entry seen published). Polled
/// every millisecond or so, so the window is approximate.
/// </summary>
internal sealed record Timeline(string Run, int SaveStepDelayMs, double RunMs, double? SaveStartMs, double? SaveEndMs)
{
    /// <summary>The median of <paramref name="runs"/> measured runs (each on a new root under <paramref name="work"/>), so one slow run does not set the kill times.</summary>
    public static Timeline Measure(KilnRunner kiln, string[] arguments, int saveStepDelayMs, string work, int runs = 3)
    {
        var timelines = Enumerable.Range(0, runs).Select(run =>
        {
            var root = Path.Combine(work, $"timeline-{Guid.NewGuid():N}");
            try { return MeasureOnce(kiln, arguments, saveStepDelayMs, root); }
            finally { Directory.Delete(root, recursive: true); }
        }).ToList();
        return new Timeline(string.Join(' ', arguments), saveStepDelayMs, Median(timelines.Select(t => t.RunMs)),
            Median(timelines.Select(t => t.SaveStartMs)), Median(timelines.Select(t => t.SaveEndMs)));
    }

    private static Timeline MeasureOnce(KilnRunner kiln, string[] arguments, int saveStepDelayMs, string root)
    {
        var cache = new CacheRoot(root);
        var running = kiln.Start(arguments, root, saveStepDelayMs);
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
        return new Timeline(string.Join(' ', arguments), saveStepDelayMs, result.Ms, start, end);
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
        $"{Run} (save step delay {SaveStepDelayMs} ms): {RunMs:F0} ms, save window {SaveStartMs:F0}..{SaveEndMs:F0} ms";
}
