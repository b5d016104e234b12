using System.Diagnostics.CodeAnalysis;
using Kiln.Graph;

namespace Kiln.Transforms;

/// <summary>
/// One rewrite of the graph, with a unique name, a stage and a typed config. Transforms never read
/// weight values: changes to weights are load-recipe steps.
/// </summary>
public interface ITransform
{
    string Name { get; }

    Stage Stage { get; }

    /// <summary>
    /// The record type of this transform's settings (<see cref="TransformConfig"/> or a subclass). Its public
    /// properties are the settings, kept by the trimmer of a precompiled kiln through the annotation.
    /// </summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)]
    Type ConfigType { get; }

    TransformConfig DefaultConfig { get; }

    /// <summary>Rewrites the graph in place and returns the number of rewrites (matches) made.</summary>
    int Apply(ModelGraph graph, TransformConfig config, TransformContext context);
}

/// <summary>Base class binding a transform to its config record.</summary>
public abstract class Transform<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] TConfig> : ITransform where TConfig : TransformConfig, new()
{
    public abstract string Name { get; }

    public abstract Stage Stage { get; }

    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)]
    public Type ConfigType => typeof(TConfig);

    public TransformConfig DefaultConfig => new TConfig();

    public int Apply(ModelGraph graph, TransformConfig config, TransformContext context) => Rewrite(graph, (TConfig)config, context);

    /// <summary>Rewrites the graph in place and returns the number of rewrites made.</summary>
    protected abstract int Rewrite(ModelGraph graph, TConfig config, TransformContext context);
}
