using System.Diagnostics;
using Kiln.Checkpoints;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Compile;

/// <summary>The graph a pipeline produced, where the time went, and what the snapshot cache did (null: not asked).</summary>
public sealed record CompileResult(ModelGraph Graph, double ExportMs, double PipelineMs, Cache.CacheReport? Cache = null);

/// <summary>
/// The one path from a checkpoint to its compiled graph: the model's export (config and headers only),
/// then the pipeline's entries in order, always in the parallel layout of a world of ranks. The snapshot
/// cache (<see cref="Cache.PipelineCache"/>) wraps this path: it restores a prefix and resumes here, so an
/// uncached, a cached and a verified (--cache-verify) compile run the same code.
/// </summary>
public static class ModelCompiler
{
    /// <summary>
    /// Exports the model and runs the pipeline's entries (through entry <paramref name="lastEntry"/> when given)
    /// for this rank of <paramref name="world"/> (default: one process).
    /// </summary>
    public static CompileResult Compile(Checkpoint checkpoint, PipelineConfig pipeline,
        Action<TransformStep, TransformInfo, ModelGraph>? observer = null, ICommunicator? world = null, int? lastEntry = null)
    {
        var clock = Stopwatch.StartNew();
        var graph = Export(checkpoint);
        var exportMs = clock.Elapsed.TotalMilliseconds;
        var pipelineMs = Resume(graph, checkpoint, pipeline, 0, observer, world, lastEntry);
        return new CompileResult(graph, exportMs, pipelineMs);
    }

    /// <summary>
    /// Runs the pipeline's entries from <paramref name="startIndex"/> on (through <paramref name="lastEntry"/> when
    /// given) over <paramref name="graph"/>, whose earlier entries are already applied (a restored snapshot);
    /// <paramref name="atPoint"/> sees the graph at each enabled snapshot point. Returns the milliseconds spent,
    /// not counting the callbacks.
    /// </summary>
    public static double Resume(ModelGraph graph, Checkpoint checkpoint, PipelineConfig pipeline, int startIndex,
        Action<TransformStep, TransformInfo, ModelGraph>? observer = null, ICommunicator? world = null, int? lastEntry = null,
        Action<int, ModelGraph>? atPoint = null)
    {
        world ??= SingleProcess.Instance;
        var entries = lastEntry is { } last ? pipeline.Entries.Take(last + 1).ToList() : pipeline.Entries;
        return Pipeline.Run(graph, entries, new TransformContext(checkpoint, world.Size, world.Rank), observer, startIndex, atPoint);
    }

    /// <summary>The reference-form graph of the checkpoint's model, before any transform.</summary>
    public static ModelGraph Export(Checkpoint checkpoint) =>
        ModelFactory.Export(checkpoint.Config, checkpoint.ConfigPath, OpRegistry.Default);
}
