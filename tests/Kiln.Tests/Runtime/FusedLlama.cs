using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Models.Llama;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Tests.Runtime;

/// <summary>
/// The Llama family in fused form, as the default pipeline's cleanups and fusions leave it (rms_norm,
/// rotary_embedding, attention, swiglu), for tests of what comes after: weight loading and the cache.
/// <see cref="Load"/> takes a checkpoint of any family (Phi-3's oracle too).
/// </summary>
public static class FusedLlama
{
    /// <summary>Loads a checkpoint through the fused graph and the given later transforms (e.g. load_weights, insert_kv_cache).</summary>
    public static LoadedModel Load(string directory, string pipelineYaml, SessionSettings? settings = null)
    {
        using var file = new TempDir();
        File.WriteAllText(file.File("pipeline.yaml"), pipelineYaml);
        var pipeline = PipelineConfig.Load(file.File("pipeline.yaml"));
        var checkpoint = Checkpoint.Open(directory);
        try
        {
            var graph = Fused(ModelFactory.Export(checkpoint.Config, Checkpoint.ConfigFileName, OpRegistry.Default));
            Pipeline.Run(graph, pipeline.Entries, new TransformContext(checkpoint));
            return LoadedModel.Create(checkpoint, graph, settings);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    public const string Uncached = "transforms:\n  - name: load_weights\n";
    public const string Cached = Uncached + "  - name: insert_kv_cache\n";
    public const string CachedSeparateRotary = Cached + "    fuse_rotary: false\n";

    /// <summary>The reference graph after the default pipeline's post_export and pattern_matcher transforms.</summary>
    public static ModelGraph Trace(LlamaConfig config) => Fused(new LlamaModel(config).Trace(OpRegistry.Default));

    // Any family's reference graph (checkpoints of the oracle families load through here too) after those transforms.
    private static ModelGraph Fused(ModelGraph graph)
    {
        var fusing = PipelineConfig.Load().Entries.Where(e => e.Stage is Stage.PostExport or Stage.PatternMatcher).ToList();
        Pipeline.Run(graph, fusing, new TransformContext(null));
        return graph;
    }
}
