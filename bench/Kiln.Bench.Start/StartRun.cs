using System.Diagnostics;
using System.Text.Json;

namespace Kiln.Bench.Start;

/// <summary>One whole `kiln generate --max-new-tokens 1 --json` process: its wall time and what it reported.</summary>
internal sealed record StartRun(double WallMs, double LoadMs, double PipelineMs, double WeightsMs, double SessionMs, double FirstTokenMs,
    long PeakRssBytes, string CacheLine)
{
    /// <summary>
    /// Starts <paramref name="kiln"/> (a native binary, or a kiln.dll run with dotnet) and waits for it; the
    /// run must exit 0 and report the cache outcome <paramref name="expected"/> (e.g. "cache hit at point").
    /// </summary>
    public static StartRun Measure(string kiln, string model, IReadOnlyList<string> cacheArguments, string expected)
    {
        string[] arguments = ["generate", "--model", model, "--max-new-tokens", "1", "--prompt-ids", "1", "--json", .. cacheArguments];
        var start = kiln.EndsWith(".dll", StringComparison.Ordinal)
            ? new ProcessStartInfo("dotnet", [kiln, .. arguments])
            : new ProcessStartInfo(kiln, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var wallMs = clock.Elapsed.TotalMilliseconds;
        var cacheLine = stderr.Result.Split('\n').FirstOrDefault(l => l.StartsWith("kiln: cache", StringComparison.Ordinal)) ?? "";
        if (process.ExitCode != 0 || !cacheLine.StartsWith($"kiln: {expected}", StringComparison.Ordinal))
            throw new InvalidOperationException($"kiln {string.Join(' ', arguments)}: exit {process.ExitCode}, expected '{expected}', stderr: {stderr.Result}");

        using var json = JsonDocument.Parse(stdout);
        var timings = json.RootElement.GetProperty("timings");
        double Ms(string name) => timings.GetProperty(name).GetDouble();
        return new StartRun(wallMs, Ms("load_ms"), Ms("pipeline_ms"), Ms("weights_ms"), Ms("session_ms"), Ms("first_token_ms"),
            json.RootElement.GetProperty("peak_rss_bytes").GetInt64(), cacheLine);
    }
}
