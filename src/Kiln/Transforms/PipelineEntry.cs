namespace Kiln.Transforms;

/// <summary>
/// One entry of a pipeline, in the order the pipeline file lists them: a <see cref="TransformStep"/>, which
/// rewrites the graph, or a <see cref="SnapshotPoint"/>, where the snapshot cache saves it. The two kinds
/// are the whole list: code that walks a pipeline switches on them.
/// </summary>
public abstract record PipelineEntry
{
    /// <summary>The name the pipeline file gives the entry (a transform's name, or <see cref="SnapshotPoint.EntryName"/>).</summary>
    public abstract string Name { get; }

    public abstract Stage Stage { get; }

    /// <summary>The entry's <c>enabled</c> setting: a disabled transform is skipped, a disabled point saves nothing.</summary>
    public abstract bool Enabled { get; }
}

/// <summary>A transform with its bound config; it runs in the transform's stage.</summary>
public sealed record TransformStep(ITransform Transform, TransformConfig Config) : PipelineEntry
{
    public override string Name => Transform.Name;

    public override Stage Stage => Transform.Stage;

    public override bool Enabled => Config.Enabled;

    /// <summary>The transform's name and every setting: what the snapshot cache hashes.</summary>
    public string Identity => ConfigBinder.Describe(Transform, Config);
}

/// <summary>
/// A snapshot point (<c>- name: pipeline_cache</c> in a pipeline file): it changes nothing. The snapshot
/// cache saves the graph here, and a later start with the same key restores it and resumes at the next
/// entry. It belongs to the stage of its position (the entry before it; factory when first) and follows
/// the transform <see cref="After"/> ("export" when no transform comes before it).
/// </summary>
public sealed record SnapshotPoint : PipelineEntry
{
    public const string EntryName = "pipeline_cache";

    public SnapshotPoint(Stage stage, string after, bool enabled) => (Stage, After, Enabled) = (stage, after, enabled);

    public override string Name => EntryName;

    public override Stage Stage { get; }

    public override bool Enabled { get; }

    public string After { get; }
}
