using System.Diagnostics;

namespace Kiln.Tests;

/// <summary>The outcome of one `kiln` process.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the real `kiln` command (the CLI project's build output) as a separate process.</summary>
public static class KilnCli
{
    // The test assembly and the CLI are built with the same configuration (Debug or Release).
    private static readonly string KilnDll = Path.Combine(TestPaths.RepoRoot, "src", "Kiln.Cli", "bin",
        new DirectoryInfo(AppContext.BaseDirectory).Parent!.Parent!.Name, "net10.0", "linux-x64", "kiln.dll");

    public static CliResult Run(params string[] args) => RunIn(Directory.GetCurrentDirectory(), args);

    public static CliResult RunIn(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(KilnDll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kiln {string.Join(" ", args)} did not finish");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
