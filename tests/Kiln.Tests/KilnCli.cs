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

    /// <summary>
    /// The snapshot cache of every `kiln` process the tests start (unless a test names its own), so
    /// tests never touch the user's cache; shared by the whole test run, deleted at exit.
    /// </summary>
    public static string SharedCacheRoot { get; } = CreateCacheRoot();

    public static CliResult Run(params string[] args) => RunIn(Directory.GetCurrentDirectory(), args);

    public static CliResult RunIn(string workingDirectory, params string[] args) => RunWith(workingDirectory, new Dictionary<string, string>(), args);

    /// <summary>Runs kiln with extra environment variables (they win over the defaults).</summary>
    public static CliResult RunWith(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(workingDirectory, environment, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kiln {string.Join(" ", args)} did not finish");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts kiln without waiting (standard output and error redirected), for tests that kill it or run several at once.</summary>
    public static Process Start(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["KILN_CACHE_DIR"] = SharedCacheRoot;
        foreach (var (name, value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(KilnDll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    /// <summary>The kiln.dll these tests run (for a test that wraps it in a shell).</summary>
    public static string Dll => KilnDll;

    private static string CreateCacheRoot()
    {
        var root = Directory.CreateTempSubdirectory("kiln-test-cache-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return root;
    }
}
