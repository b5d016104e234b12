using Kiln.Cache;

namespace Kiln.Cli;

/// <summary>
/// <c>--cache-progress</c>: one line on stderr as each step of a cache save is done, e.g.
/// "kiln: save snapshot 9d4558663128d1ef: files written". Written at once, on the saving thread, so a
/// reader sees a step as soon as it is done (the crash tests kill processes by these lines).
/// </summary>
public sealed class SaveProgressLines : IProgress<SaveProgress>
{
    public void Report(SaveProgress value) => Console.Error.WriteLine($"kiln: save {value.Entry}: {Name(value.Step)}");

    private static string Name(SaveStep step) => step switch
    {
        SaveStep.Staged => "staged",
        SaveStep.FilesWritten => "files written",
        SaveStep.ManifestWritten => "manifest written",
        _ => "published",
    };
}
