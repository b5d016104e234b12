using System.Diagnostics;
using System.Reflection;

namespace Kiln.Bench.LlamaCpp;

/// <summary>The outcome of one child process: exit code, stdout, stderr, wall time.</summary>
internal sealed record ChildResult(int ExitCode, string Stdout, string Stderr, double WallMs, bool TimedOut)
{
    public bool Ok => ExitCode == 0 && !TimedOut;

    /// <summary>The last line of stdout that is a JSON object (programs may print other lines first).</summary>
    public string? JsonLine => Stdout.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith('{'));

    public string Failure => TimedOut ? $"timed out after {WallMs / 1000:F0} s" : $"exit {ExitCode}: {Tail(Stderr.Length > 0 ? Stderr : Stdout)}";

    private static string Tail(string s)
    {
        var lines = s.Trim().Split('\n');
        return string.Join(" | ", lines.Skip(Math.Max(0, lines.Length - 3)));
    }
}

/// <summary>Starts kiln (a binary or a kiln.dll under dotnet) and this program again (its llama.cpp sub-commands).</summary>
internal static class ChildProcess
{
    public static ChildResult Kiln(string kiln, IEnumerable<string> args, int timeoutS) =>
        kiln.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? Run("dotnet", [kiln, .. args], timeoutS)
            : Run(kiln, args, timeoutS);

    /// <summary>This program with <paramref name="args"/>: the apphost when it runs as one, otherwise dotnet and the assembly.</summary>
    public static ChildResult Self(IEnumerable<string> args, int timeoutS)
    {
        var process = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? Run(process, [Assembly.GetEntryAssembly()!.Location, .. args], timeoutS)
            : Run(process, args, timeoutS);
    }

    public static ChildResult Run(string file, IEnumerable<string> args, int timeoutS)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var exited = process.WaitForExit(TimeSpan.FromSeconds(timeoutS));
        if (!exited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        return new ChildResult(exited ? process.ExitCode : -1, stdout.Result, stderr.Result, clock.Elapsed.TotalMilliseconds, !exited);
    }
}
