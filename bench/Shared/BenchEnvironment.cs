using System.Diagnostics;

namespace Kiln.Bench;

/// <summary>Where the benchmark programs run from: the repository root and its commit, for result files.</summary>
public static class BenchEnvironment
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kiln.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Kiln.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The short commit id of <paramref name="repo"/>, or null without git.</summary>
    public static string? GitCommit(string repo)
    {
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", ["-C", repo, "rev-parse", "--short", "HEAD"]) { RedirectStandardOutput = true })!;
            var commit = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? commit : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    /// <summary>The CPU's model name from /proc/cpuinfo.</summary>
    public static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    /// <summary>Total memory from /proc/meminfo, GiB.</summary>
    public static double MemoryGiB() =>
        long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0 / 1024.0;
}
