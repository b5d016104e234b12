using Kiln.Transforms;

namespace Kiln.Cache;

/// <summary>
/// A snapshot point as manifests, reports and `kiln cache explain` name it: its index in the pipeline's
/// entries, the transform it follows and its stage (by name).
/// </summary>
public sealed record PointInfo(int Index, string After, string Stage)
{
    /// <summary>The snapshot point at entry <paramref name="index"/> of <paramref name="pipeline"/>.</summary>
    public static PointInfo Of(PipelineConfig pipeline, int index)
    {
        var point = (SnapshotPoint)pipeline.Entries[index];
        return new PointInfo(index, point.After, point.Stage.Name());
    }

    /// <summary>"point 17 (after select_session_options, stage compile)", as a run reports it.</summary>
    public string Describe() => $"point {Index} (after {After}, stage {Stage})";
}
