namespace Kiln.Bench.Crash;

/// <summary>
/// One uncached run (a miss on an empty root) watched from outside: its duration, and when the save
/// window opened (the first staging folder seen) and closed (the last entry seen published). Polled
/// every millisecond or so, so the window is approximate.
/// </summary>
internal sealed record Timeline(string Run, int SaveStepDelayMs, double RunMs, double? SaveStartMs, double? SaveEndMs)
{
    public static Timeline Measure(KilnRunner kiln, string[] arguments, int saveStepDelayMs, string root)
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

    public override string ToString() =>
        $"{Run} (save step delay {SaveStepDelayMs} ms): {RunMs:F0} ms, save window {SaveStartMs:F0}..{SaveEndMs:F0} ms";
}
