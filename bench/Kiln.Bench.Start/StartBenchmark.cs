namespace Kiln.Bench.Start;

/// <summary>The medians of one kind of start (uncached, cold or warm) of one model.</summary>
internal sealed record KindResult(string Kind, int Runs, double WallMs, double MinWallMs, double MaxWallMs, double PipelineMs, double WeightsMs,
    double SessionMs, double FirstTokenMs, long PeakRssBytes, string CacheLine);

/// <summary>Whole-process starts of one model: the three kinds alternating, and the ratios the targets name.</summary>
internal sealed record ModelResult(string Model, long CheckpointBytes, KindResult Uncached, KindResult Cold, KindResult Warm)
{
    public double ColdOverWarm => Cold.WallMs / Warm.WallMs;

    public double ColdOverUncached => Cold.WallMs / Uncached.WallMs;
}

/// <summary>
/// Starts fresh kiln processes in three kinds, alternating so drifting machine load reaches all alike:
/// uncached (--no-cache), cold (a new empty --cache-dir: a miss that saves) and warm (a primed
/// --cache-dir: a hit). Medians of the repeats.
/// </summary>
internal static class StartBenchmark
{
    public static ModelResult Run(string kiln, string model, IReadOnlyList<string> extra, string work, int repeats, Action<string> progress)
    {
        var warmRoot = Path.Combine(work, $"warm-{Path.GetFileName(model)}");
        if (Directory.Exists(warmRoot)) Directory.Delete(warmRoot, recursive: true); // left by an earlier run in the same --work
        // Primes the warm root and brings the checkpoint into the OS file cache, as a second start finds it.
        StartRun.Measure(kiln, model, ["--cache-dir", warmRoot, .. extra], "cache miss");
        StartRun.Measure(kiln, model, ["--cache-dir", warmRoot, .. extra], "cache hit at point");
        var (uncached, cold, warm) = (new List<StartRun>(), new List<StartRun>(), new List<StartRun>());
        for (var r = 0; r < repeats; r++)
        {
            uncached.Add(StartRun.Measure(kiln, model, ["--no-cache", .. extra], "cache off"));
            var coldRoot = Path.Combine(work, $"cold-{Path.GetFileName(model)}-{r}");
            cold.Add(StartRun.Measure(kiln, model, ["--cache-dir", coldRoot, .. extra], "cache miss"));
            Directory.Delete(coldRoot, recursive: true);
            warm.Add(StartRun.Measure(kiln, model, ["--cache-dir", warmRoot, .. extra], "cache hit at point"));
            progress($"{Path.GetFileName(model)} repeat {r + 1}/{repeats}: uncached {uncached[^1].WallMs:F0} ms, cold {cold[^1].WallMs:F0} ms, warm {warm[^1].WallMs:F0} ms");
        }
        var bytes = Directory.EnumerateFiles(model, "*.safetensors").Sum(f => new FileInfo(f).Length);
        return new ModelResult(Path.GetFileName(model) + (extra.Count > 0 ? $" ({string.Join(' ', extra)})" : ""), bytes, Summarize("uncached", uncached), Summarize("cold", cold), Summarize("warm", warm));
    }

    private static KindResult Summarize(string kind, List<StartRun> runs)
    {
        var wall = runs.Select(r => r.WallMs).Order().ToList();
        return new KindResult(kind, runs.Count, Median(wall), wall[0], wall[^1], Median(runs.Select(r => r.PipelineMs)), Median(runs.Select(r => r.WeightsMs)),
            Median(runs.Select(r => r.SessionMs)), Median(runs.Select(r => r.FirstTokenMs)), (long)Median(runs.Select(r => (double)r.PeakRssBytes)), runs[^1].CacheLine);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        var middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
