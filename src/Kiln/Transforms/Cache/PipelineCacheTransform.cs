using Kiln.Graph;

namespace Kiln.Transforms.Cache;

/// <summary>
/// A snapshot point: changes nothing; the pipeline saves the graph here and a later start with the
/// same key restores it and resumes at the next transform. Its stage is the stage of its position.
/// </summary>
public sealed class PipelineCacheTransform : Transform<TransformConfig>
{
    public const string TransformName = "pipeline_cache";

    public override string Name => TransformName;

    /// <summary>Nominal only: <see cref="PipelineConfig"/> gives each snapshot point the stage of the entry before it.</summary>
    public override Stage Stage => Stage.Factory;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context) => 0;
}
