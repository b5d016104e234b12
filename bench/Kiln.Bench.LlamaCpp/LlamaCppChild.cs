using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Kiln.Benchmarks;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>What the llama.cpp child prints for a timed run (one JSON line on stdout).</summary>
internal sealed record LlamaRun(string Gguf, int Threads, int PromptTokens, int NewTokens, int Repeats, string KvType, string FlashAttn,
    double LoadMs, double PrefillTokensPerS, double DecodeTokensPerS, double TtftMs, long PeakRssBytes,
    double ReadBandwidthBytesPerS, long WeightBytesPerToken, double DecodeBoundTokensPerS, double DecodeFractionOfBound,
    Dictionary<string, int> TensorTypes);

/// <summary>What the llama.cpp logits child prints; the logits themselves go to a binary file (f32, positions × vocab).</summary>
internal sealed record LlamaLogits(string Gguf, int Positions, int Vocab, string KvType, string FlashAttn);

/// <summary>
/// The llama.cpp side, run in a child process of its own (`llama-run`, `llama-logits`) so that its peak
/// RSS is its own. Both read the ids they run from the command line, so the parent decides the tokens.
/// </summary>
internal static class LlamaCppChild
{
    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>`llama-run --gguf F --ids "..." --new-tokens N --threads T --repeats R [--kv-type f16|f32] [--flash-attn auto|on|off] [--probe-bytes B]`.</summary>
    public static int Run(string[] args)
    {
        var o = ChildOptions.Parse(args);
        var prompt = o.Ids;
        var newTokens = o.Int("--new-tokens");
        var threads = o.Int("--threads");
        var repeats = o.Int("--repeats");
        var clock = Stopwatch.StartNew();
        var parameters = Parameters(o.Gguf, prompt.Length + newTokens, prompt.Length, threads, o.KvType, o.FlashAttention);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var loadMs = clock.Elapsed.TotalMilliseconds;
        var vocab = weights.NativeHandle.Vocab.Count;

        Generate(context, prompt, newTokens, vocab);
        // As kiln bench: the warm-up's peak, read before the probe's buffer exists.
        var peakRss = Process.GetCurrentProcess().PeakWorkingSet64;
        using var probe = new ReadBandwidthProbe(o.Long("--probe-bytes", ReadBandwidthProbe.DefaultBufferBytes));
        var runs = new List<(double FirstMs, double TotalMs)>();
        var bandwidths = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            bandwidths.Add(probe.Measure(threads, ModelBenchmark.ProbePassesPerRun).BytesPerSecond);
            runs.Add(Generate(context, prompt, newTokens, vocab));
        }
        var gguf = GgufFile.Read(o.Gguf);
        var weightBytes = WeightBytesPerToken(gguf);
        var bandwidth = Median(bandwidths);
        var decode = Median(runs.Select(r => (newTokens - 1) / ((r.TotalMs - r.FirstMs) / 1000)));
        var result = new LlamaRun(Path.GetFileName(o.Gguf), threads, prompt.Length, newTokens, repeats, o.KvType, o.FlashAttention, loadMs,
            Median(runs.Select(r => prompt.Length / (r.FirstMs / 1000))), decode, Median(runs.Select(r => r.FirstMs)), peakRss,
            bandwidth, weightBytes, bandwidth / weightBytes, decode / (bandwidth / weightBytes),
            gguf.Tensors.GroupBy(t => t.Type.ToString()).ToDictionary(g => g.Key, g => g.Count()));
        Console.WriteLine(JsonSerializer.Serialize(result, Json));
        return 0;
    }

    /// <summary>`llama-logits --gguf F --ids "..." --out FILE [--kv-type f16|f32] [--flash-attn auto|on|off] [--threads T]`: one batch, logits at every position.</summary>
    public static int Logits(string[] args)
    {
        var o = ChildOptions.Parse(args);
        var ids = o.Ids;
        var parameters = Parameters(o.Gguf, ids.Length, ids.Length, o.Int("--threads", 1), o.KvType, o.FlashAttention);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var vocab = weights.NativeHandle.Vocab.Count;
        var batch = new LLamaBatch();
        for (var i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, true);
        Decode(context, batch);
        var all = new float[ids.Length * vocab];
        for (var i = 0; i < ids.Length; i++) context.NativeHandle.GetLogitsIth(i)[..vocab].CopyTo(all.AsSpan(i * vocab, vocab));
        File.WriteAllBytes(o.String("--out"), MemoryMarshal.AsBytes(all.AsSpan()).ToArray());
        Console.WriteLine(JsonSerializer.Serialize(new LlamaLogits(Path.GetFileName(o.Gguf), ids.Length, vocab, o.KvType, o.FlashAttention), Json));
        return 0;
    }

    /// <summary>
    /// Bytes one decode step reads as stored in the GGUF: every tensor whole, except token_embd, of which
    /// a step reads one row, unless there is no output tensor (tied: the head reads all of it).
    /// </summary>
    public static long WeightBytesPerToken(GgufFile gguf)
    {
        var tied = gguf.Tensors.All(t => t.Name != "output.weight");
        return gguf.Tensors.Sum(t => t.Name == "token_embd.weight" && !tied ? t.ByteLength / t.Dims[^1] : t.ByteLength);
    }

    private static ModelParams Parameters(string gguf, int context, int batch, int threads, string kvType, string flashAttention)
    {
        var type = kvType switch
        {
            "f16" => GGMLType.GGML_TYPE_F16,
            "f32" => GGMLType.GGML_TYPE_F32,
            _ => throw new ArgumentException($"--kv-type: f16 or f32, not {kvType}"),
        };
        return new ModelParams(gguf)
        {
            ContextSize = (uint)context,
            BatchSize = (uint)Math.Max(batch, 1),
            UBatchSize = (uint)Math.Max(batch, 1),
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            TypeK = type,
            TypeV = type,
            // null: llama.cpp's default (auto).
            FlashAttention = flashAttention switch
            {
                "on" => true,
                "off" => false,
                "auto" => null,
                _ => throw new ArgumentException($"--flash-attn: auto, on or off, not {flashAttention}"),
            },
        };
    }

    /// <summary>Greedy generation with llama.cpp's own KV cache: the prompt in one batch, then one decode call per token.</summary>
    public static (double FirstMs, double TotalMs) Generate(LLamaContext context, int[] prompt, int newTokens, int vocabSize)
    {
        context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        var clock = Stopwatch.StartNew();
        batch.AddRange(prompt.Select(i => (LLamaToken)i).ToArray(), 0, LLamaSeqId.Zero, true);
        Decode(context, batch);
        var next = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1), vocabSize);
        var firstMs = clock.Elapsed.TotalMilliseconds;
        for (var produced = 1; produced < newTokens; produced++)
        {
            batch.Clear();
            batch.Add(next, prompt.Length + produced - 1, LLamaSeqId.Zero, true);
            Decode(context, batch);
            next = ArgMax(context.NativeHandle.GetLogitsIth(0), vocabSize);
        }
        return (firstMs, clock.Elapsed.TotalMilliseconds);
    }

    private static void Decode(LLamaContext context, LLamaBatch batch)
    {
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}: {NativeLog.Recent()}");
    }

    private static LLamaToken ArgMax(Span<float> logits, int vocabSize)
    {
        var best = 0;
        for (var i = 1; i < vocabSize; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>The children's options: --name value pairs.</summary>
internal sealed class ChildOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static ChildOptions Parse(string[] args)
    {
        var o = new ChildOptions();
        for (var i = 0; i + 1 < args.Length; i += 2) o._values[args[i]] = args[i + 1];
        if (args.Length % 2 != 0) throw new ArgumentException($"option {args[^1]} has no value");
        return o;
    }

    public string String(string name) => _values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"{name} is required");
    public int Int(string name, int? fallback = null) => _values.TryGetValue(name, out var v) ? int.Parse(v) : fallback ?? throw new ArgumentException($"{name} is required");
    public long Long(string name, long fallback) => _values.TryGetValue(name, out var v) ? long.Parse(v) : fallback;
    public string Gguf => String("--gguf");
    public string KvType => _values.GetValueOrDefault("--kv-type", "f16");
    public string FlashAttention => _values.GetValueOrDefault("--flash-attn", "auto");
    public int[] Ids => String("--ids").Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
}
