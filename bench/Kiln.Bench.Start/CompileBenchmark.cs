using System.Diagnostics;
using System.Text.Json;

namespace Kiln.Bench.Start;

/// <summary>The medians of cold and warm whole `kiln compile --json` processes on one checkpoint.</summary>
internal sealed record CompileResult(string Model, int Runs, double ColdWallMs, double WarmWallMs, double MinColdWallMs, double MaxColdWallMs,
    double MinWarmWallMs, double MaxWarmWallMs, double WarmRestoreMs, double MinWarmRestoreMs, double MaxWarmRestoreMs)
{
    public double ColdOverWarm => ColdWallMs / WarmWallMs;
}

/// <summary>
/// Fresh `kiln compile --json` processes alternating cold (a new empty --cache-dir: a miss that saves
/// both snapshot points) and warm (a primed --cache-dir: a hit at the final point), with the restore time
/// each warm process reports (cache.restore_ms). Compiling reads config.json and the safetensors headers
/// only, so a sparse checkpoint with Llama 3.1 70B's shapes stands for the real one.
/// </summary>
internal static class CompileBenchmark
{
    public static CompileResult Run(string kiln, string model, string work, int repeats, Action<string> progress)
    {
        var warmRoot = Path.Combine(work, $"compile-warm-{Path.GetFileName(model)}");
        if (Directory.Exists(warmRoot)) Directory.Delete(warmRoot, recursive: true);
        Measure(kiln, model, warmRoot, "miss");
        Measure(kiln, model, warmRoot, "hit");
        var (cold, warm) = (new List<(double Wall, double Restore)>(), new List<(double Wall, double Restore)>());
        for (var r = 0; r < repeats; r++)
        {
            var coldRoot = Path.Combine(work, $"compile-cold-{Path.GetFileName(model)}-{r}");
            cold.Add(Measure(kiln, model, coldRoot, "miss"));
            Directory.Delete(coldRoot, recursive: true);
            warm.Add(Measure(kiln, model, warmRoot, "hit"));
            progress($"{Path.GetFileName(model)} compile {r + 1}/{repeats}: cold {cold[^1].Wall:F0} ms, warm {warm[^1].Wall:F0} ms (restore {warm[^1].Restore:F1} ms)");
        }
        var (coldWall, warmWall, restore) = (cold.Select(c => c.Wall).Order().ToList(), warm.Select(w => w.Wall).Order().ToList(), warm.Select(w => w.Restore).Order().ToList());
        return new CompileResult(Path.GetFileName(model), repeats, Median(coldWall), Median(warmWall), coldWall[0], coldWall[^1], warmWall[0], warmWall[^1],
            Median(restore), restore[0], restore[^1]);
    }

    private static (double Wall, double Restore) Measure(string kiln, string model, string cacheRoot, string expected)
    {
        string[] arguments = ["compile", "--model", model, "--json", "--cache-dir", cacheRoot];
        var start = kiln.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet", [kiln, .. arguments]) : new ProcessStartInfo(kiln, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var wallMs = clock.Elapsed.TotalMilliseconds;
        using var json = JsonDocument.Parse(stdout);
        var cache = json.RootElement.GetProperty("cache");
        if (process.ExitCode != 0 || cache.GetProperty("status").GetString() != expected)
            throw new InvalidOperationException($"kiln {string.Join(' ', arguments)}: exit {process.ExitCode}, expected a {expected}, stderr: {stderr.Result}");
        return (wallMs, cache.GetProperty("restore_ms").GetDouble());
    }

    private static double Median(IReadOnlyList<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}
