using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Kiln.Bench.Crash;

/// <summary>Starts real <c>dotnet kiln.dll</c> processes on a cache root.</summary>
internal sealed class KilnRunner(string kiln)
{
    /// <summary>The two runs killed: a compile that saves, and the generate of bench/Kiln.Bench.Cache.</summary>
    public static readonly string[] Compile = ["compile"];

    public static readonly string[] Generate = ["generate", "--max-new-tokens", "1", "--prompt-ids", "1"];

    /// <summary>The run after a kill, and each run of a concurrency round: 16 greedy tokens, so a wrong graph shows.</summary>
    public static readonly string[] Check = ["generate", "--max-new-tokens", "16", "--prompt-ids", "1", "--json", "--threads", "1"];

    /// <summary>
    /// Starts kiln on <paramref name="cacheRoot"/> (null: --no-cache); with <paramref name="saveProgress"/> it
    /// reports each step of its cache saves on stderr (--cache-progress), which <see cref="Running.KillAtSaveStep"/> waits for.
    /// </summary>
    public Running Start(string[] arguments, string? cacheRoot, bool saveProgress = false)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(kiln);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        if (cacheRoot is null) start.ArgumentList.Add("--no-cache");
        else { start.ArgumentList.Add("--cache-dir"); start.ArgumentList.Add(cacheRoot); }
        if (saveProgress) start.ArgumentList.Add("--cache-progress");
        start.Environment.Remove("KILN_CACHE_DIR");
        return new Running(Process.Start(start)!);
    }

    public RunResult Run(string[] arguments, string? cacheRoot) => Start(arguments, cacheRoot).Wait();
}

/// <summary>A started kiln process, its output read as it comes (so a full pipe never blocks it).</summary>
internal sealed class Running
{
    private readonly Process _process;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task<string> _stdout;
    // Stderr line by line: all of it for the result, and each line as it comes for KillAtSaveStep.
    private readonly BlockingCollection<string> _lines = [];
    private readonly Task<string> _stderr;

    public Running(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = Task.Run(() =>
        {
            var all = new System.Text.StringBuilder();
            while (process.StandardError.ReadLine() is { } line)
            {
                all.Append(line).Append('\n');
                _lines.Add(line);
            }
            _lines.CompleteAdding();
            return all.ToString();
        });
    }

    public bool HasExited => _process.HasExited;

    public double ElapsedMs => _clock.Elapsed.TotalMilliseconds;

    /// <summary>
    /// Waits for the <paramref name="step"/>-th line a save reports ("kiln: save ...", counted from 0) and
    /// kills the process at once; false if it exited first (it saved less than that).
    /// </summary>
    public bool KillAtSaveStep(int step)
    {
        var seen = 0;
        foreach (var line in _lines.GetConsumingEnumerable())
        {
            if (line.StartsWith("kiln: save ", StringComparison.Ordinal) && seen++ == step) return Kill();
        }
        return false;
    }

    /// <summary>How many save steps the process reported, once it has exited.</summary>
    public int SaveSteps() => _stderr.Result.Split('\n').Count(l => l.StartsWith("kiln: save ", StringComparison.Ordinal));

    /// <summary>SIGKILL (what Process.Kill sends on Linux); false if the process had already exited.</summary>
    public bool Kill()
    {
        if (_process.HasExited) return false;
        try { _process.Kill(); }
        catch (InvalidOperationException) { return false; } // exited in between
        return true;
    }

    public RunResult Wait()
    {
        if (!_process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            _process.Kill();
            _process.WaitForExit();
            return new RunResult(-1, _stdout.Result, _stderr.Result + "\n(crash bench: killed after 2 minutes: a hang)", ElapsedMs);
        }
        var result = new RunResult(_process.ExitCode, _stdout.Result, _stderr.Result, ElapsedMs);
        _process.Dispose();
        return result;
    }
}

/// <summary>One finished kiln process and what its cache line (CacheReport.Summary on stderr) said.</summary>
internal sealed record RunResult(int ExitCode, string Stdout, string Stderr, double Ms)
{
    public string? CacheLine => Stderr.Split('\n').FirstOrDefault(l => l.StartsWith("kiln: cache ", StringComparison.Ordinal))?.Trim();

    public bool Hit => CacheLine?.StartsWith("kiln: cache hit", StringComparison.Ordinal) == true;

    public bool Miss => CacheLine?.StartsWith("kiln: cache miss", StringComparison.Ordinal) == true;

    /// <summary>A miss that compiled and published at least one snapshot.</summary>
    public bool Compiled => Miss && CacheLine!.Contains("compiled and saved", StringComparison.Ordinal) && !CacheLine.Contains("saved 0 snapshot", StringComparison.Ordinal);

    /// <summary>The miss's reason, "(...)" of "kiln: cache miss (REASON); ...".</summary>
    public string? MissReason => Miss && CacheLine is { } line && line.IndexOf(");", StringComparison.Ordinal) is var end and > 0
        ? line["kiln: cache miss (".Length..end]
        : null;

    /// <summary>
    /// Exit 0 with a hit or a miss, no warning and no corrupt entry met (a miss's reason, or a hit's
    /// "later point not used" reason, says "corrupt entry: ..." when a restore found one and quarantined it),
    /// nor corrupt weights (the weights line says "weights miss (corrupt weights: ...)").
    /// </summary>
    public bool Clean => ExitCode == 0 && (Hit || Miss) && !Stderr.Contains("kiln: warning", StringComparison.Ordinal)
        && !CacheLine!.Contains("corrupt", StringComparison.Ordinal) && !Stderr.Contains("kiln: weights miss (corrupt", StringComparison.Ordinal);

    /// <summary>new_ids of a --json generate, as JSON text; null if the output is not that.</summary>
    public string? NewIds
    {
        get
        {
            try { return JsonNode.Parse(Stdout)?["new_ids"]?.ToJsonString(); }
            catch (System.Text.Json.JsonException) { return null; }
        }
    }

    public string Describe() => $"exit {ExitCode}; stderr: {Stderr.Trim().Replace('\n', '|')}";
}
