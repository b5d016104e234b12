using System.Diagnostics;

namespace Kiln.Bench.Cache;

/// <summary>
/// Whole-process wall time of <c>dotnet kiln.dll generate --max-new-tokens 1 --prompt-ids 1</c> on the
/// default model (stories260K), medians: without the cache (--no-cache), cold (a new empty
/// --cache-dir each run: a miss that saves) and warm (a primed --cache-dir: a hit at the final point).
/// The three kinds alternate, so drifting machine load reaches all of them alike.
/// </summary>
internal sealed record ProcessResult(string Command, Timing NoCache, Timing Cold, Timing Warm, double ColdOverWarm);

internal static class ProcessBenchmark
{
    public static ProcessResult Run(string kiln, string work, int repeats)
    {
        string[] generate = ["generate", "--max-new-tokens", "1", "--prompt-ids", "1"];
        var warmRoot = Path.Combine(work, "cache-generate-warm");
        Start(kiln, [.. generate, "--cache-dir", warmRoot], "cache miss"); // primes the warm root and the OS file cache
        Start(kiln, [.. generate, "--cache-dir", warmRoot], "cache hit at point");
        var (noCache, cold, warm) = (new List<double>(), new List<double>(), new List<double>());
        for (var r = 0; r < repeats; r++)
        {
            noCache.Add(Start(kiln, [.. generate, "--no-cache"], "cache off"));
            cold.Add(Start(kiln, [.. generate, "--cache-dir", Path.Combine(work, $"cache-generate-cold-{r}")], "cache miss"));
            warm.Add(Start(kiln, [.. generate, "--cache-dir", warmRoot], "cache hit at point"));
        }
        var (c, w) = (Timing.Of(cold), Timing.Of(warm));
        return new ProcessResult($"dotnet kiln.dll {string.Join(' ', generate)} [--no-cache | --cache-dir DIR]", Timing.Of(noCache), c, w, c.MedianMs / w.MedianMs);
    }

    // Wall time from start to exit; the run must report the cache outcome expected of it.
    private static double Start(string kiln, string[] arguments, string expected)
    {
        var start = new ProcessStartInfo("dotnet", [kiln, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        var ms = clock.Elapsed.TotalMilliseconds;
        _ = stdout.Result;
        if (process.ExitCode != 0 || !stderr.Contains($"kiln: {expected}", StringComparison.Ordinal))
            throw new InvalidOperationException($"kiln {string.Join(' ', arguments)}: exit {process.ExitCode}, expected '{expected}', stderr: {stderr}");
        return ms;
    }
}
