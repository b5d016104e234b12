using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>The default pipeline's snapshot points as runs report them, derived from the pipeline (never typed in).</summary>
public static class DefaultPoints
{
    /// <summary>The pipeline entry index of the final point.</summary>
    public static int FinalIndex { get; } = Indices(PipelineConfig.Load())[^1];

    /// <summary>The final point, e.g. "point 17 (after select_session_options, stage compile)".</summary>
    public static string Final { get; } = Describe(PipelineConfig.Load(), FinalIndex);

    /// <summary>"point N", the start of <see cref="Final"/>.</summary>
    public static string FinalShort => $"point {FinalIndex}";

    /// <summary>"point N" of the first point (the pre-weight-load boundary).</summary>
    public static string FirstShort { get; } = $"point {Indices(PipelineConfig.Load())[0]}";

    /// <summary>The entry indices of <paramref name="pipeline"/>'s snapshot points, in order.</summary>
    public static IReadOnlyList<int> Indices(PipelineConfig pipeline) =>
        pipeline.Entries.Select((entry, index) => (entry, index)).Where(p => p.entry is SnapshotPoint).Select(p => p.index).ToList();

    /// <summary>How a run names the point at entry <paramref name="index"/> of <paramref name="pipeline"/>: "point N (after T, stage S)".</summary>
    public static string Describe(PipelineConfig pipeline, int index)
    {
        var after = pipeline.Entries.Take(index).OfType<TransformStep>().Last();
        return $"point {index} (after {after.Name}, stage {pipeline.Entries[index].Stage.Name()})";
    }
}
