using System.Diagnostics;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Compile;

/// <summary>The graph a pipeline produced, where the time went, and what the snapshot cache did (null: not asked).</summary>
public sealed record CompileResult(ModelGraph Graph, double ExportMs, double PipelineMs, Cache.CacheReport? Cache = null);

/// <summary>Exports a checkpoint's graph (config and headers only) and runs a pipeline over it.</summary>
public static class ModelCompiler
{
    public static CompileResult Compile(Checkpoint checkpoint, PipelineConfig pipeline,
        Action<PipelineEntry, TransformInfo, ModelGraph>? observer = null)
    {
        var clock = Stopwatch.StartNew();
        var graph = Export(checkpoint);
        var exportMs = clock.Elapsed.TotalMilliseconds;
        var pipelineMs = Pipeline.Run(graph, pipeline.Entries, new TransformContext(checkpoint), observer);
        return new CompileResult(graph, exportMs, pipelineMs);
    }

    /// <summary>The reference-form graph of the checkpoint's model, before any transform.</summary>
    public static ModelGraph Export(Checkpoint checkpoint) =>
        ModelFactory.Export(checkpoint.Config, Path.Combine(checkpoint.Directory, Checkpoint.ConfigFileName), OpRegistry.Default);
}
