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
}
