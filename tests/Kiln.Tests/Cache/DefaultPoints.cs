using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>The default pipeline's snapshot points as runs report them, derived from the pipeline (never typed in).</summary>
public static class DefaultPoints
{
    /// <summary>The pipeline entry index of the final point.</summary>
    public static int FinalIndex { get; } = PipelineConfig.Load().Entries.Select((e, i) => (e, i)).Last(p => p.e.IsSnapshotPoint).i;

    /// <summary>The final point, e.g. "point 16 (after select_session_options, stage compile)".</summary>
    public static string Final { get; } = Describe(FinalIndex);

    /// <summary>"point N", the start of <see cref="Final"/>.</summary>
    public static string FinalShort => Final[..Final.IndexOf(' ', "point ".Length)];

    /// <summary>"point N" of the first point (the pre-weight-load boundary).</summary>
    public static string FirstShort { get; } = $"point {PipelineConfig.Load().Entries.Select((e, i) => (e, i)).First(p => p.e.IsSnapshotPoint).i}";

    private static string Describe(int index)
    {
        var entries = PipelineConfig.Load().Entries;
        var after = entries.Take(index).Last(e => !e.IsSnapshotPoint);
        return $"point {index} (after {after.Name}, stage {entries[index].Stage.Name()})";
    }
}
