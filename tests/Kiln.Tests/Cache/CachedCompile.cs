using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Distributed;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>In-process compiles through the snapshot cache, and the logits of the graph they give.</summary>
public static class CachedCompile
{
    public static readonly long[] Ids = [1, 403, 407, 300, 12];

    /// <summary>Compiles through the cache; the graph and what the cache did.</summary>
    public static CompileResult Run(string model, CacheSettings settings, PipelineConfig? pipeline = null, ICommunicator? ranks = null)
    {
        using var checkpoint = Checkpoint.Open(model);
        return new PipelineCache(settings, ranks).Compile(checkpoint, pipeline ?? PipelineConfig.Load());
    }

    /// <summary>Compiles through the cache and runs the result once on <see cref="Ids"/> (one thread, so results are reproducible).</summary>
    public static (float[] Logits, CacheReport Report) Logits(string model, CacheSettings settings, PipelineConfig? pipeline = null)
    {
        var result = Run(model, settings, pipeline);
        return (Forward(model, result), result.Cache!);
    }

    /// <summary>The logits of a compile without any cache.</summary>
    public static float[] Uncached(string model, PipelineConfig? pipeline = null)
    {
        using var checkpoint = Checkpoint.Open(model);
        return Forward(model, ModelCompiler.Compile(checkpoint, pipeline ?? PipelineConfig.Load()));
    }

    private static float[] Forward(string model, CompileResult result)
    {
        using var loaded = LoadedModel.Create(Checkpoint.Open(model), result.Graph, new SessionSettings(IntraOpThreads: 1));
        return loaded.Forward(Ids, Enumerable.Range(0, Ids.Length).Select(i => (long)i).ToArray());
    }
}
