using System.Diagnostics;
using Kiln.Compile;
using Kiln.Models;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Benchmarks;

/// <summary>What `kiln bench` runs.</summary>
/// <param name="Threads">ORT intra-op threads and bandwidth-probe threads; null: every logical processor.</param>
/// <param name="Prepacking">Overrides the compiled graph's choice (session.prepacking); null keeps it.</param>
/// <param name="Spinning">ORT intra-op thread spinning (<see cref="SessionSettings.Spinning"/>, off by default).</param>
/// <param name="Context">The run's context (<see cref="SessionSettings.Context"/>); null: the model's, capped.</param>
/// <param name="ContextSource">What errors about <paramref name="Context"/> start with (<see cref="SessionSettings.ContextSource"/>).</param>
public sealed record BenchmarkOptions(
    int PromptTokens = 128,
    int NewTokens = 128,
    int? Threads = null,
    int Repeats = 5,
    bool? Prepacking = null,
    int Seed = 0,
    long ProbeBufferBytes = ReadBandwidthProbe.DefaultBufferBytes,
    bool Spinning = false,
    int? Context = null,
    string ContextSource = "context")
{
    public void Validate()
    {
        if (PromptTokens < 1) throw new KilnException("prompt_tokens: must be at least 1");
        if (NewTokens < 2) throw new KilnException("new_tokens: must be at least 2 (decode speed is measured after the first token)");
        if (Threads is < 1) throw new KilnException("threads: must be at least 1");
        if (Repeats < 1) throw new KilnException("repeats: must be at least 1");
    }
}

/// <summary>
/// The medians of <see cref="BenchmarkResult.Repeats"/> timed generations (after one untimed warm-up),
/// the median of the machine's read bandwidth measured in the same process just before each of them,
/// and the decode speed that bandwidth allows (bandwidth / weight bytes read per token). With tensor
/// parallelism the figures are rank 0's (weights: its share), plus the time its all-reduces took per
/// generated token and every rank's peak RSS.
/// </summary>
public sealed record BenchmarkResult(
    string Model,
    int Threads,
    int PromptTokens,
    int NewTokens,
    int Context,
    int MaxPositions,
    int Repeats,
    bool Prepacking,
    bool Spinning,
    double LoadMs,
    double PrefillTokensPerS,
    double DecodeTokensPerS,
    double TtftMs,
    long PeakRssBytes,
    double ReadBandwidthBytesPerS,
    string WeightFormat,
    long WeightBytesPerToken,
    double DecodeBoundTokensPerS,
    double DecodeFractionOfBound,
    string[] Warnings,
    int TensorParallel,
    double AllReduceMsPerToken,
    long[] RankPeakRssBytes);

/// <summary>Benchmarks a checkpoint compiled with the full pipeline: greedy generation of a fixed, seeded prompt.</summary>
public static class ModelBenchmark
{
    /// <summary>Passes of the bandwidth probe before each timed run; the fastest counts.</summary>
    public const int ProbePassesPerRun = 3;

    /// <summary>
    /// Loads and benchmarks the model; with a <paramref name="cache"/>, through it (a warm run decodes from
    /// the weights tier's mapped products instead of buffers computed at load).
    /// </summary>
    public static BenchmarkResult Run(string modelDirectory, BenchmarkOptions options, PipelineConfig? pipeline = null, Kiln.Cache.PipelineCache? cache = null,
        IProgress<Weights.QuantizeProgress>? progress = null, Distributed.ICommunicator? world = null)
    {
        options.Validate();
        var threads = options.Threads ?? Environment.ProcessorCount;
        var settings = new SessionSettings(IntraOpThreads: threads, Prepacking: options.Prepacking, Spinning: options.Spinning,
            Context: options.Context, ContextSource: options.ContextSource);
        using var model = LoadedModel.Load(modelDirectory, settings, pipeline, cache, progress, world);

        var warnings = new List<string>();
        var (promptTokens, newTokens) = FitContext(options.PromptTokens, options.NewTokens, model.Context, warnings);
        var prompt = Prompt(model, promptTokens, options.Seed);
        var generation = new GenerationOptions(newTokens, new SamplingOptions(), new HashSet<int>());
        var generator = new Generator(model);

        generator.Generate(prompt, generation);
        // The timed runs repeat the warm-up, so this is their peak too; read before the probe buffer exists.
        var peakRss = Process.GetCurrentProcess().PeakWorkingSet64;

        // The machine's bandwidth drifts (shared hosts, frequency changes): the probe runs just before
        // each timed generation, so both medians sample the same stretch of time.
        using var probe = new ReadBandwidthProbe(options.ProbeBufferBytes);
        var runs = new List<GenerationResult>(options.Repeats);
        var bandwidths = new List<double>(options.Repeats);
        var allReduceMs = 0.0;
        for (var i = 0; i < options.Repeats; i++)
        {
            bandwidths.Add(probe.Measure(threads, ProbePassesPerRun).BytesPerSecond);
            var before = model.Session.AllReduceMs;
            runs.Add(generator.Generate(prompt, generation));
            allReduceMs += model.Session.AllReduceMs - before;
        }
        // Every rank's peak (in MiB, which a float carries exactly enough), gathered so rank 0 can report them all.
        var peaks = new float[model.World.Size];
        model.World.AllGather([peakRss / (float)(1 << 20)], peaks);
        var bandwidth = Median(bandwidths);
        var weightBytes = DecodeWeightTraffic.BytesPerToken(model.Graph);
        var decode = Median(runs.Select(r => r.DecodeTokensPerSecond));
        var bound = bandwidth / weightBytes;
        return new BenchmarkResult(
            Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory))),
            threads, promptTokens, newTokens, model.Context, model.MaxPositions, options.Repeats, model.Session.Prepacking, options.Spinning, model.Timings.TotalMs,
            Median(runs.Select(r => promptTokens / (r.FirstTokenMs / 1000))),
            decode,
            Median(runs.Select(r => r.FirstTokenMs)),
            peakRss,
            bandwidth,
            WeightFormat.Of(model.Graph),
            weightBytes,
            bound,
            decode / bound,
            [.. warnings],
            model.World.Size,
            allReduceMs / (options.Repeats * (double)newTokens),
            [.. peaks.Select(mib => (long)(mib * (1 << 20)))]);
    }

    // Every requested new token must fit, so a too-long prompt is shortened first.
    private static (int Prompt, int New) FitContext(int prompt, int newTokens, int context, List<string> warnings)
    {
        if (newTokens >= context)
        {
            warnings.Add($"new_tokens {newTokens} does not fit the context of {context}: using {context - 1}");
            newTokens = context - 1;
        }
        if (prompt + newTokens > context)
        {
            warnings.Add($"prompt_tokens {prompt} with {newTokens} new tokens exceeds the context of {context}: using {context - newTokens} prompt tokens");
            prompt = context - newTokens;
        }
        return (prompt, newTokens);
    }

    private static int[] Prompt(LoadedModel model, int length, int seed) => SeededPrompt(model.VocabSize, length, seed, model.Facts.BosTokenId);

    /// <summary>
    /// The benchmark prompt: seeded random ids below <paramref name="vocabSize"/>, <paramref name="bos"/>
    /// first when given. Other engines' benchmarks use it to run the same tokens.
    /// </summary>
    public static int[] SeededPrompt(int vocabSize, int length, int seed, int? bos)
    {
        var random = new Random(seed);
        var ids = Enumerable.Range(0, length).Select(_ => random.Next(vocabSize)).ToArray();
        if (bos is { } id && length > 0) ids[0] = id;
        return ids;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
