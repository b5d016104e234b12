using System.Diagnostics;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Transforms;
using Kiln.Weights;

namespace Kiln.Runtime;

/// <summary>
/// A checkpoint turned into a running model: exported graph, weights bound from the mapped files,
/// and an ONNX Runtime session. Owns the checkpoint mapping, weight buffers and session.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly WeightSet _weights;

    private LoadedModel(Checkpoint checkpoint, ModelGraph graph, WeightSet weights, CompiledSession session, LoadTimings timings, int context,
        ICommunicator world)
    {
        World = world;
        Checkpoint = checkpoint;
        Graph = graph;
        _weights = weights;
        Session = session;
        Timings = timings;
        Context = context;
        KvCache = KvCacheSignature.ReadFrom(graph);
    }

    public Checkpoint Checkpoint { get; }

    /// <summary>The ranks this model's graph is one shard of (a world of one unless tensor-parallel).</summary>
    public ICommunicator World { get; }

    public ModelGraph Graph { get; }

    public CompiledSession Session { get; }

    public LoadTimings Timings { get; }

    /// <summary>What the snapshot cache did while loading (null when no cache was given).</summary>
    public CacheReport? Cache { get; private set; }

    /// <summary>What the cache's weights tier did (null without a cache entry, or when the graph has no weight product).</summary>
    public WeightsReport? WeightsCache { get; private set; }

    /// <summary>The graph's key/value cache inputs and outputs (insert_kv_cache), or null for a graph that recomputes the whole sequence.</summary>
    public KvCacheSignature? KvCache { get; }

    /// <summary>The model the graph computes (vocabulary, context length, special tokens), from its config.json.</summary>
    public ModelFacts Facts => FactsOf(Graph);

    public int VocabSize => Facts.VocabSize;

    /// <summary>The model's context length (config.json's max_position_embeddings).</summary>
    public int MaxPositions => Facts.ContextLength;

    /// <summary>
    /// Positions this session serves (<see cref="SessionSettings.ContextFor"/>): the rotary tables were
    /// built for this many, and no run may go past it.
    /// </summary>
    public int Context { get; }

    /// <summary>
    /// Checks token ids before a run: at least one, each in the vocabulary, no more than
    /// <paramref name="context"/> (default: <see cref="Context"/>). Errors start with <paramref name="source"/>
    /// (the option or input the ids came from).
    /// </summary>
    public void CheckTokens(IReadOnlyList<int> ids, string source, int? context = null)
    {
        if (ids.Count == 0) throw new KilnException($"{source}: no tokens to start from");
        foreach (var id in ids)
        {
            if (id < 0 || id >= VocabSize) throw new KilnException($"{source}: token id {id} is outside the vocabulary (0..{VocabSize - 1})");
        }
        var limit = Math.Min(context ?? Context, Context);
        if (ids.Count > limit)
        {
            throw new KilnException($"{source}: {ids.Count} tokens exceed the context of {limit} " +
                (limit == MaxPositions ? "(config.json max_position_embeddings)" : $"(the run's context; max_position_embeddings is {MaxPositions})"));
        }
    }

    /// <summary>Bytes of weights copied (recipes that transform data); the rest are views of the mapped files.</summary>
    public long CopiedWeightBytes => _weights.Parameters.Where(w => w.IsCopy).Sum(w => w.ByteLength);

    public long WeightBytes => _weights.Parameters.Sum(w => w.ByteLength);

    /// <summary>Every parameter's bytes as the session reads them: views of the mapped files or recipe products.</summary>
    public IReadOnlyList<ParameterData> Weights => _weights.Parameters;

    /// <summary>
    /// Opens the checkpoint, compiles its graph with the pipeline (default: the embedded default
    /// pipeline), maps and binds the weights, and creates the session. <paramref name="progress"/> hears how
    /// far quantizing the weights is, when the pipeline quantizes and the cache does not supply them.
    /// <paramref name="world"/> is the tensor-parallel world this process is one rank of (default: one
    /// process); a cache must have been made for the same world. <paramref name="afterCompile"/> hears the
    /// compile's cache report (null without a cache) before the weights are bound: what else a start takes
    /// from the final entry can load meanwhile (<see cref="TokenizerLoad"/>).
    /// </summary>
    public static LoadedModel Load(string directory, SessionSettings? settings = null, PipelineConfig? pipeline = null, PipelineCache? cache = null,
        IProgress<QuantizeProgress>? progress = null, ICommunicator? world = null, Action<CacheReport?>? afterCompile = null)
    {
        world ??= SingleProcess.Instance;
        var clock = Stopwatch.StartNew();
        // ONNX Runtime's process-wide environment is made on another thread while the pipeline restores and the
        // weights are mapped (its singleton is thread-safe: the session waits for it if need be). A fresh warm start of
        // the default model then creates its session in about 17 instead of 27 ms (docs/cache.md).
        var ortEnvironment = Task.Run(Microsoft.ML.OnnxRuntime.OrtEnv.Instance);
        Checkpoint? checkpoint = null;
        try
        {
            checkpoint = Checkpoint.Open(directory);
            pipeline ??= PipelineConfig.Load();
            var compiled = cache is null ? ModelCompiler.Compile(checkpoint, pipeline, world: world) : cache.Compile(checkpoint, pipeline);
            afterCompile?.Invoke(compiled.Cache);
            var tier = cache?.WeightsTierFor(compiled.Cache);
            var model = Create(checkpoint, compiled.Graph, settings, clock.Elapsed.TotalMilliseconds, tier, progress, world);
            model.Cache = compiled.Cache;
            model.WeightsCache = tier?.Report;
            return model;
        }
        catch
        {
            checkpoint?.Dispose();
            // A process that exits while another thread is still loading ONNX Runtime can crash in the library's exit
            // handlers (SIGSEGV instead of the error's exit code): an error leaves only once the environment is made.
            ((IAsyncResult)ortEnvironment).AsyncWaitHandle.WaitOne();
            throw;
        }
    }

    /// <summary>
    /// Runs a graph as it is: applies its parameters' load recipes (bound by the pipeline's
    /// load_weights) to the checkpoint, or maps the products from the cache's <paramref name="weightsTier"/>,
    /// and creates the session. Takes ownership of <paramref name="checkpoint"/>.
    /// </summary>
    public static LoadedModel Create(Checkpoint checkpoint, ModelGraph graph, SessionSettings? settings = null, double pipelineMs = 0, WeightsTier? weightsTier = null,
        IProgress<QuantizeProgress>? progress = null, ICommunicator? world = null)
    {
        world ??= SingleProcess.Instance;
        var clock = Stopwatch.StartNew();
        settings ??= SessionSettings.Default;
        var context = settings.ContextFor(FactsOf(graph).ContextLength);
        WeightSet? weights = null;
        try
        {
            var onnx = GraphLowering.ToOnnx(graph, context);
            // Computed products are saved to the cache while the session is created from them (a single process).
            weights = weightsTier?.Load(checkpoint, graph, progress, saveInBackground: true) ?? WeightSet.Compute(checkpoint, graph, progress: progress);
            var weightsMs = clock.Elapsed.TotalMilliseconds;

            CompiledSession session;
            try
            {
                var initializers = weights.Parameters.Select(w => new ExternalInitializer(w.Name, w.DType, w.Shape, w.Pointer, w.ByteLength)).ToList();
                using (PrepackedSources.ReleasedWhileCreating(graph, weights)) session = CompiledSession.Create(onnx, initializers, settings.WithGraphChoices(graph.Metadata), world);
            }
            finally
            {
                // Before anything can unmap the weights the save reads.
                weightsTier?.FinishSaving();
            }
            var timings = new LoadTimings(pipelineMs, weightsMs, clock.Elapsed.TotalMilliseconds - weightsMs);
            return new LoadedModel(checkpoint, graph, weights, session, timings, context, world);
        }
        catch
        {
            weights?.Dispose();
            throw;
        }
    }

    private static ModelFacts FactsOf(ModelGraph graph) =>
        graph.Model ?? throw new GraphException("the graph carries no model facts (vocabulary, context length) to run it with");

    /// <summary>Logits for every position of one sequence: [ids.Length * vocab], row-major.</summary>
    public float[] Forward(IReadOnlyList<long> ids, IReadOnlyList<long> positions)
    {
        if (KvCache != null)
        {
            // The cached kernel places the tokens after the cache's contents: one prefill on an empty cache.
            for (var p = 0; p < positions.Count; p++)
            {
                if (positions[p] != p) throw new KilnException($"positions: a model with a key/value cache runs positions 0, 1, 2, ... (position {p} is {positions[p]})");
            }
            using var decoder = new CachedDecoder(this, ids.Count);
            return decoder.PrefillAllPositions(ids);
        }
        var shape = new long[] { 1, ids.Count };
        var inputs = new Dictionary<string, Int64Tensor>
        {
            ["input_ids"] = new(ids.ToArray(), shape),
            ["position_ids"] = new(positions.ToArray(), shape),
        };
        return Session.Run(inputs, Graph.Outputs[0].Name).Data;
    }

    public void Dispose()
    {
        Session.Dispose();
        _weights.Dispose();
        Checkpoint.Dispose();
    }
}

/// <summary>Milliseconds spent compiling (export and pipeline), loading weights and creating the session.</summary>
public sealed record LoadTimings(double PipelineMs, double WeightsMs, double SessionMs)
{
    public double TotalMs => PipelineMs + WeightsMs + SessionMs;
}
