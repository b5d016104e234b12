using System.Text.RegularExpressions;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// Kills a `kiln` process (SIGKILL) the moment one of its cache saves reports a step (`--cache-progress`):
/// the kill time comes from the save's own progress, not from a guess at how long the run takes.
/// </summary>
public static partial class SaveKiller
{
    /// <summary>A step of the <see cref="Save"/>-th save (0: the first) of an entry kind ("snapshot" or "weights").</summary>
    public sealed record Target(string Kind, int Save, SaveStep Step);

    /// <summary>The steps a save reports before it is visible, for each of <paramref name="saves"/> saves of <paramref name="kind"/>.</summary>
    public static IReadOnlyList<Target> BeforePublishing(string kind, int saves) =>
        [.. from save in Enumerable.Range(0, saves)
            from step in new[] { SaveStep.Staged, SaveStep.FilesWritten, SaveStep.ManifestWritten }
            select new Target(kind, save, step)];

    /// <summary>
    /// Runs kiln with <paramref name="args"/> and kills it as soon as <paramref name="target"/> is reported;
    /// false when the process ended without reporting it.
    /// </summary>
    public static bool Kill(string workingDirectory, IReadOnlyDictionary<string, string> environment, string[] args, Target target)
    {
        using var process = KilnCli.Start(workingDirectory, environment, [.. args, "--cache-progress"]);
        _ = process.StandardOutput.ReadToEndAsync();
        var entries = new List<string>();
        var killed = false;
        while (!killed && process.StandardError.ReadLine() is { } line)
        {
            if (StepLine().Match(line) is not { Success: true } match || match.Groups["kind"].Value != target.Kind) continue;
            var entry = match.Groups["entry"].Value;
            if (!entries.Contains(entry)) entries.Add(entry);
            if (entries.IndexOf(entry) == target.Save && match.Groups["step"].Value == Name(target.Step))
            {
                process.Kill();
                killed = true;
            }
        }
        process.WaitForExit();
        return killed;
    }

    // The CLI's words for the steps (its SaveProgressLines), typed here as the interface they are.
    private static string Name(SaveStep step) => step switch
    {
        SaveStep.Staged => "staged",
        SaveStep.FilesWritten => "files written",
        SaveStep.ManifestWritten => "manifest written",
        _ => "published",
    };

    // "kiln: save snapshot 9d4558663128d1ef: files written"
    [GeneratedRegex("^kiln: save (?<entry>(?<kind>[a-z]+) [0-9a-f]{16}): (?<step>[a-z ]+)$")]
    private static partial Regex StepLine();
}
