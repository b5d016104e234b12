using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Benchmarks;
using Kiln.Checkpoints;
using Kiln.Graph;
using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>A GGUF the run wrote or quantized: its path, type, size, tensor types and weight bytes per decode step.</summary>
internal sealed record GgufProduct(string Format, string LlamaType, string Path, long Bytes, long WeightBytesPerToken,
    Dictionary<string, int> TensorTypes, double Ms, string How, string? Error = null);

/// <summary>One engine's timed run of one format at one thread count (null fields: the engine did not report them).</summary>
internal sealed record EngineRun(string Engine, string Format, int Threads, bool Ok, string? Error,
    double? LoadMs, double? PrefillTokensPerS, double? DecodeTokensPerS, double? TtftMs, long? PeakRssBytes,
    double? ReadBandwidthBytesPerS, long? WeightBytesPerToken, double? DecodeBoundTokensPerS, double? DecodeFractionOfBound,
    string? WeightFormat, string[] Command, JsonNode? Raw)
{
    /// <summary>The 1-minute load average when the run started (this machine may be shared).</summary>
    public double? LoadAverageAtStart { get; init; }

    /// <summary>Which round of the pair's alternating runs this is (1-based).</summary>
    public int Round { get; init; } = 1;
}

/// <summary>
/// Kiln / llama.cpp for one format and thread count: the ratios of the two engines' medians over the rounds (each
/// engine's figure, e.g. decode tokens/s, the median of its rounds), and the decode ratio of each round on its own.
/// </summary>
internal sealed record PairRatio(string Format, int Threads, double? Decode, double? Prefill, double? PeakRss, double? FractionOfBoundKiln, double? FractionOfBoundLlama,
    double?[] DecodeByRound);

/// <summary>An engine's logits for the accuracy ids against Kiln's f32 logits (every position, every vocabulary entry).</summary>
internal sealed record Accuracy(string Engine, string Format, bool Ok, string? Error, int Positions, double? MaxAbsError,
    double? MaxAbsErrorOverMaxAbsReference, int? Top1Agree, double? Top1Agreement, string How);

internal sealed record SameWeightsResult(string DateUtc, string? Commit, string Cpu, int LogicalProcessors, double MemoryGiB, double[] LoadAverageAtStart, double[] LoadAverage,
    string Model, string SourceDtype, string KilnF32Checkpoint, string Kiln16Checkpoint, string Kiln16Dtype, string Kiln, string VocabularySource,
    int PromptTokens, int NewTokens, int Repeats, int Rounds, int[] PromptIds, int[] AccuracyIds, string LlamaKvType, string LlamaFlashAttn, bool LlamaPure,
    Dictionary<string, string[]> KilnArgs, string[] KilnBenchArgs, List<GgufProduct> Ggufs, List<Accuracy> Accuracy,
    List<EngineRun> Runs, List<PairRatio> Ratios, double? F32LlamaMaxAbsError);

/// <summary>
/// `same-weights`: Kiln and llama.cpp on the same weights in one run. From a Llama checkpoint folder it
/// writes the GGUFs (F32, F16, and Q8_0/Q4_0/Q4_1 by llama.cpp's quantizer), the Kiln checkpoints each format
/// pair needs, then measures accuracy against Kiln's f32 logits and speed at each thread count, every
/// engine run in a child process of its own.
/// </summary>
internal static class SameWeightsBenchmark
{
    public static int Run(SameWeightsArguments a)
    {
        var repo = BenchEnvironment.RepoRoot();
        var kiln = a.Kiln ?? Path.Combine(repo, "src", "Kiln.Cli", "bin", "Release", "net10.0", "linux-x64", "kiln.dll");
        if (!File.Exists(kiln)) throw new FileNotFoundException($"kiln not found at {kiln}: build it (dotnet build -c Release src/Kiln.Cli) or pass --kiln PATH");
        var loadAtStart = LoadAverage();
        var model = Path.TrimEndingDirectorySeparator(Path.GetFullPath(a.Model));
        var name = Path.GetFileName(model);
        var work = Path.GetFullPath(a.Work ?? Path.Combine(Path.GetTempPath(), "kiln-llamacpp", name));
        Directory.CreateDirectory(work);
        Log($"model {model}, work folder {work}, kiln {kiln}");

        // The checkpoints Kiln runs: f32 (also the source of its quantized runs) and 16-bit.
        DType sourceDtype;
        LlamaShape shape;
        using (var checkpoint = Checkpoint.Open(model))
        {
            sourceDtype = checkpoint.Tensors.Values.Where(t => t.Shape.Length == 2).Select(t => t.DType).Distinct().Single();
            shape = LlamaShape.From(checkpoint.Config, checkpoint.ConfigPath);
        }
        var halfDtype = a.Half switch { "f16" => DType.F16, "bf16" => DType.BF16, _ => sourceDtype == DType.F32 ? DType.F16 : sourceDtype };
        var kilnF32 = sourceDtype == DType.F32 ? model : Path.Combine(work, "kiln-f32");
        if (kilnF32 != model) Timed($"f32 copy of the {sourceDtype} checkpoint -> {kilnF32}", () => CheckpointCopy.Write(model, kilnF32, DType.F32));
        var halfName = halfDtype == DType.F16 ? "f16" : "bf16";
        var kiln16 = sourceDtype == halfDtype ? model : Path.Combine(work, $"kiln-{halfName}");
        if (a.Formats.Contains("f16") && kiln16 != model)
            Timed($"{halfName} copy of the checkpoint -> {kiln16}", () => CheckpointCopy.Write(model, kiln16, halfDtype));

        // The GGUFs: F32 from the f32 values, F16 from the 16-bit checkpoint's, Q8_0, Q4_0 and Q4_1 quantized by llama.cpp from F32.
        var ggufs = new List<GgufProduct>();
        var f32Gguf = Path.Combine(work, $"{name}-F32.gguf");
        var clock = Stopwatch.StartNew();
        var conversion = HfToGguf.Write(kilnF32, f32Gguf, GgmlType.F32);
        ggufs.Add(Product("f32", "F32", f32Gguf, clock.Elapsed.TotalMilliseconds, $"written from {kilnF32}"));
        Log($"wrote {f32Gguf} ({conversion.Bytes:N0} bytes, {conversion.Tensors} tensors; vocabulary: {conversion.VocabularySource})");
        if (a.Formats.Contains("f16"))
        {
            var path = Path.Combine(work, $"{name}-F16.gguf");
            clock.Restart();
            HfToGguf.Write(kiln16, path, GgmlType.F16);
            ggufs.Add(Product("f16", "F16", path, clock.Elapsed.TotalMilliseconds,
                $"written from {kiln16} ({halfName}{(halfDtype == DType.BF16 ? ", converted to f16" : "")})"));
        }
        // Each quantized format against llama.cpp's type of the same block layout: int8 Q8_0, int4_sym Q4_0, int4 Q4_1.
        foreach (var (format, type, ftype) in new[]
        {
            ("int8", "Q8_0", LLamaFtype.MOSTLY_Q8_0), ("int4_sym", "Q4_0", LLamaFtype.MOSTLY_Q4_0), ("int4", "Q4_1", LLamaFtype.MOSTLY_Q4_1),
        })
        {
            if (!a.Formats.Contains(format)) continue;
            var path = Path.Combine(work, $"{name}-{type}.gguf");
            clock.Restart();
            var how = $"llama_model_quantize({Path.GetFileName(f32Gguf)}, {ftype}{(a.LlamaPure ? ", pure" : "")})";
            try
            {
                LlamaQuantize.Run(f32Gguf, path, ftype, a.LlamaPure, Environment.ProcessorCount);
                ggufs.Add(Product(format, type, path, clock.Elapsed.TotalMilliseconds, how));
            }
            catch (InvalidOperationException e)
            {
                // E.g. rows that are not whole 32-element blocks (stories260K's 172): llama.cpp has no fallback
                // for them. Kiln's side of the pair still runs; llama.cpp's is reported as failed.
                Log($"  {type}: {e.Message}");
                ggufs.Add(new GgufProduct(format, type, path, 0, 0, [], Math.Round(clock.Elapsed.TotalMilliseconds, 1), how, e.Message));
            }
        }
        foreach (var g in ggufs.Where(g => g.Error is null)) Log($"  {g.LlamaType,-5} {g.Bytes,14:N0} bytes, {g.WeightBytesPerToken,14:N0} weight bytes/token, tensors {string.Join(" ", g.TensorTypes.Select(kv => $"{kv.Key}:{kv.Value}"))}");

        var pairs = a.Formats.Select(f => new FormatPair(f, ggufs.Single(g => g.Format == f).LlamaType, f == "f16" ? kiln16 : kilnF32, a.KilnArgs[f])).ToList();
        var promptIds = ModelBenchmark.SeededPrompt(shape.Vocab, a.PromptTokens, seed: 0, bos: shape.Bos);
        var accuracyIds = ModelBenchmark.SeededPrompt(shape.Vocab, a.AccuracyTokens, seed: 1, bos: shape.Bos);

        var accuracy = new List<Accuracy>();
        if (a.Accuracy) accuracy = MeasureAccuracy(a, kiln, work, kilnF32, pairs, ggufs, accuracyIds, shape.Vocab);

        var runs = new List<EngineRun>();
        var ratios = new List<PairRatio>();
        if (a.Speed)
        {
            foreach (var threads in a.Threads)
            {
                foreach (var pair in pairs)
                {
                    // The engines alternate, Kiln first in odd rounds and llama.cpp first in even ones, so that the
                    // machine's changing bandwidth falls on both alike.
                    var (kilnRuns, llamaRuns) = (new List<EngineRun>(), new List<EngineRun>());
                    for (var round = 1; round <= a.Rounds; round++)
                    {
                        EngineRun RunKiln() => KilnBench(a, kiln, pair, threads) with { LoadAverageAtStart = LoadAverage().FirstOrDefault(), Round = round };
                        EngineRun RunLlama() => LlamaBench(a, ggufs.Single(g => g.Format == pair.Name), pair.Name, promptIds, threads) with
                            { LoadAverageAtStart = LoadAverage().FirstOrDefault(), Round = round };
                        if (round % 2 == 1)
                        {
                            kilnRuns.Add(RunKiln());
                            llamaRuns.Add(RunLlama());
                        }
                        else
                        {
                            llamaRuns.Add(RunLlama());
                            kilnRuns.Add(RunKiln());
                        }
                        runs.Add(kilnRuns[^1]);
                        runs.Add(llamaRuns[^1]);
                    }
                    ratios.Add(new PairRatio(pair.Name, threads,
                        Ratio(Median(kilnRuns, r => r.DecodeTokensPerS), Median(llamaRuns, r => r.DecodeTokensPerS)),
                        Ratio(Median(kilnRuns, r => r.PrefillTokensPerS), Median(llamaRuns, r => r.PrefillTokensPerS)),
                        Ratio(Median(kilnRuns, r => r.PeakRssBytes), Median(llamaRuns, r => r.PeakRssBytes)),
                        Median(kilnRuns, r => r.DecodeFractionOfBound), Median(llamaRuns, r => r.DecodeFractionOfBound),
                        [.. kilnRuns.Zip(llamaRuns, (k, l) => Ratio(k.DecodeTokensPerS, l.DecodeTokensPerS))]));
                }
            }
        }

        var result = new SameWeightsResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), BenchEnvironment.CpuModel(), Environment.ProcessorCount,
            Math.Round(BenchEnvironment.MemoryGiB(), 1), loadAtStart, LoadAverage(), model, sourceDtype.ToString().ToLowerInvariant(), kilnF32, kiln16, halfName, kiln,
            conversion.VocabularySource, a.PromptTokens, a.NewTokens, a.Repeats, a.Rounds, promptIds, accuracyIds, a.LlamaKvType, a.LlamaFlashAttn, a.LlamaPure, a.KilnArgs, a.KilnBenchArgs,
            ggufs, accuracy, runs, ratios, accuracy.FirstOrDefault(x => x.Engine == "llama.cpp" && x.Format == "f32")?.MaxAbsError);
        Print(result);
        var dir = Path.Combine(repo, "bench", "results");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"llamacpp-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
        }) + "\n");
        Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
        return runs.All(r => r.Ok) && accuracy.All(x => x.Ok) ? 0 : 1;
    }

    private static GgufProduct Product(string format, string type, string path, double ms, string how)
    {
        var gguf = GgufFile.Read(path);
        return new GgufProduct(format, type, path, new FileInfo(path).Length, LlamaCppChild.WeightBytesPerToken(gguf),
            gguf.Tensors.GroupBy(t => t.Type.ToString()).ToDictionary(g => g.Key, g => g.Count()), Math.Round(ms, 1), how);
    }

    // ---- accuracy ----

    /// <summary>
    /// The reference is Kiln's f32 logits at every position: `kiln logits --json` prints the last
    /// position's logits and the argmax at every position, so it runs once per prefix of the ids (a
    /// causal model's logits at position p depend on ids 0..p only) and once on all of them for the
    /// argmax row. Kiln's other formats run the same way with their arguments; llama.cpp returns every
    /// position's logits from one batch.
    /// </summary>
    private static List<Accuracy> MeasureAccuracy(SameWeightsArguments a, string kiln, string work, string kilnF32, List<FormatPair> pairs, List<GgufProduct> ggufs,
        int[] ids, int vocab)
    {
        var results = new List<Accuracy>();
        Log($"accuracy: {ids.Length} ids, Kiln f32 reference");
        var reference = KilnLogits(a, kiln, work, new FormatPair("f32", "F32", kilnF32, []), ids, vocab);
        if (reference.Error is not null)
        {
            results.Add(new Accuracy("kiln", "f32", false, reference.Error, ids.Length, null, null, null, null, "reference"));
            return results;
        }
        var referenceLogits = reference.Logits!;
        var referenceMax = referenceLogits.Max(Math.Abs);
        var argmaxReference = Enumerable.Range(0, ids.Length).Select(p => ArgMax(referenceLogits.AsSpan(p * vocab, vocab))).ToArray();
        if (!argmaxReference.SequenceEqual(reference.Argmax!))
            Log($"  note: Kiln f32's argmax row and the argmax of its prefix runs' logits differ ({string.Join(" ", reference.Argmax!)} vs {string.Join(" ", argmaxReference)})");

        Accuracy Compare(string engine, string format, float[] logits, int[] argmax, string how)
        {
            double max = 0;
            for (var i = 0; i < logits.Length; i++) max = Math.Max(max, Math.Abs(logits[i] - referenceLogits[i]));
            var agree = argmax.Zip(argmaxReference).Count(x => x.First == x.Second);
            return new Accuracy(engine, format, true, null, ids.Length, max, max / referenceMax, agree, (double)agree / ids.Length, how);
        }

        foreach (var pair in pairs)
        {
            if (pair.Name != "f32" || pair.KilnArgs.Length > 0)
            {
                Log($"accuracy: Kiln {pair.Name}");
                var k = KilnLogits(a, kiln, work, pair, ids, vocab);
                results.Add(k.Error is null
                    ? Compare("kiln", pair.Name, k.Logits!, k.Argmax!, $"kiln logits --json --model {pair.KilnCheckpoint} {string.Join(' ', pair.KilnArgs)} per prefix")
                    : new Accuracy("kiln", pair.Name, false, k.Error, ids.Length, null, null, null, null, "kiln logits"));
            }
            else
            {
                results.Add(Compare("kiln", "f32", referenceLogits, reference.Argmax!, "the reference itself (Kiln f32 argmax row vs its prefix runs)"));
            }
            var gguf = ggufs.Single(g => g.Format == pair.Name);
            if (gguf.Error is not null)
            {
                results.Add(new Accuracy("llama.cpp", pair.Name, false, $"no {gguf.LlamaType} GGUF: {gguf.Error}", ids.Length, null, null, null, null, "llama-logits"));
                continue;
            }
            Log($"accuracy: llama.cpp {gguf.LlamaType}");
            var outFile = Path.Combine(work, $"logits-{gguf.LlamaType}.f32");
            var child = ChildProcess.Self(["llama-logits", "--gguf", gguf.Path, "--ids", string.Join(' ', ids), "--out", outFile, "--kv-type", a.LlamaKvType, "--flash-attn", a.LlamaFlashAttn,
                "--threads", a.Threads.Max().ToString(CultureInfo.InvariantCulture)], a.ChildTimeoutS);
            if (!child.Ok)
            {
                results.Add(new Accuracy("llama.cpp", pair.Name, false, child.Failure, ids.Length, null, null, null, null, "llama-logits"));
                continue;
            }
            var logits = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outFile)).ToArray();
            if (logits.Length != ids.Length * vocab)
            {
                results.Add(new Accuracy("llama.cpp", pair.Name, false, $"{logits.Length} logits, expected {ids.Length}x{vocab}", ids.Length, null, null, null, null, "llama-logits"));
                continue;
            }
            var argmax = Enumerable.Range(0, ids.Length).Select(p => ArgMax(logits.AsSpan(p * vocab, vocab))).ToArray();
            results.Add(Compare("llama.cpp", pair.Name, logits, argmax, $"{gguf.LlamaType} GGUF, one batch, logits at every position, KV cache {a.LlamaKvType}, flash attention {a.LlamaFlashAttn}"));
        }
        return results;
    }

    private sealed record KilnLogitsResult(float[]? Logits, int[]? Argmax, string? Error);

    private static KilnLogitsResult KilnLogits(SameWeightsArguments a, string kiln, string work, FormatPair pair, int[] ids, int vocab)
    {
        // A cache root per format: the quantized runs' entries never meet the f32 ones.
        var cache = Path.Combine(work, $"kiln-cache-{pair.Name}");
        var logits = new float[ids.Length * vocab];
        int[]? argmax = null;
        for (var n = 1; n <= ids.Length; n++)
        {
            var child = ChildProcess.Kiln(kiln, ["logits", "--json", "--model", pair.KilnCheckpoint, "--ids", string.Join(' ', ids.Take(n)),
                "--threads", "1", "--cache-dir", cache, .. pair.KilnArgs], a.ChildTimeoutS);
            if (!child.Ok) return new KilnLogitsResult(null, null, child.Failure);
            var json = JsonNode.Parse(child.JsonLine ?? "{}")!;
            var last = json["last_logits"]?.AsArray().Select(v => v!.GetValue<float>()).ToArray();
            if (last is null || last.Length != vocab) return new KilnLogitsResult(null, null, $"kiln logits printed {last?.Length ?? 0} last_logits, expected {vocab}");
            last.CopyTo(logits, (n - 1) * vocab);
            if (n == ids.Length) argmax = json["argmax"]?.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        }
        return argmax is null || argmax.Length != ids.Length
            ? new KilnLogitsResult(null, null, "kiln logits printed no argmax row")
            : new KilnLogitsResult(logits, argmax, null);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }

    // ---- speed ----

    private static EngineRun KilnBench(SameWeightsArguments a, string kiln, FormatPair pair, int threads)
    {
        string[] args = ["bench", "--json", "--model", pair.KilnCheckpoint, "--threads", threads.ToString(CultureInfo.InvariantCulture),
            "--prompt-tokens", a.PromptTokens.ToString(CultureInfo.InvariantCulture), "--new-tokens", a.NewTokens.ToString(CultureInfo.InvariantCulture),
            "--repeats", a.Repeats.ToString(CultureInfo.InvariantCulture), .. pair.KilnArgs, .. a.KilnBenchArgs];
        Log($"speed: kiln {pair.Name}, {threads} thread(s): kiln {string.Join(' ', args)}");
        var child = ChildProcess.Kiln(kiln, args, a.ChildTimeoutS);
        if (!child.Ok || child.JsonLine is null)
            return new EngineRun("kiln", pair.Name, threads, false, child.Ok ? "no JSON on stdout" : child.Failure, null, null, null, null, null, null, null, null, null, null, ["kiln", .. args], null);
        var j = JsonNode.Parse(child.JsonLine)!;
        // kiln bench draws the same seeded prompt (ModelBenchmark.SeededPrompt, seed 0, BOS first); a context too
        // short for prompt + new tokens would shorten it, and the engines would no longer run the same tokens.
        if (L(j, "prompt_tokens") != a.PromptTokens || L(j, "new_tokens") != a.NewTokens)
            return new EngineRun("kiln", pair.Name, threads, false, $"kiln ran {L(j, "prompt_tokens")} + {L(j, "new_tokens")} tokens, not {a.PromptTokens} + {a.NewTokens}",
                null, null, null, null, null, null, null, null, null, null, ["kiln", .. args], j);
        return new EngineRun("kiln", pair.Name, threads, true, null, D(j, "load_ms"), D(j, "prefill_tokens_per_s"), D(j, "decode_tokens_per_s"), D(j, "ttft_ms"),
            L(j, "peak_rss_bytes"), D(j, "read_bandwidth_bytes_per_s"), L(j, "weight_bytes_per_token"), D(j, "decode_bound_tokens_per_s"),
            D(j, "decode_fraction_of_bound"), j["weight_format"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null, ["kiln", .. args], j);
    }

    private static EngineRun LlamaBench(SameWeightsArguments a, GgufProduct gguf, string format, int[] promptIds, int threads)
    {
        string[] args = ["llama-run", "--gguf", gguf.Path, "--ids", string.Join(' ', promptIds), "--new-tokens", a.NewTokens.ToString(CultureInfo.InvariantCulture),
            "--threads", threads.ToString(CultureInfo.InvariantCulture), "--repeats", a.Repeats.ToString(CultureInfo.InvariantCulture),
            "--kv-type", a.LlamaKvType, "--flash-attn", a.LlamaFlashAttn, "--probe-bytes", a.ProbeBytes.ToString(CultureInfo.InvariantCulture)];
        if (gguf.Error is not null)
            return new EngineRun("llama.cpp", format, threads, false, $"no {gguf.LlamaType} GGUF: {gguf.Error}", null, null, null, null, null, null, null, null, null, gguf.LlamaType, [], null);
        Log($"speed: llama.cpp {gguf.LlamaType}, {threads} thread(s)");
        var child = ChildProcess.Self(args, a.ChildTimeoutS);
        string[] shown = [.. args[..4], "<prompt ids>", .. args[5..]];
        if (!child.Ok || child.JsonLine is null)
            return new EngineRun("llama.cpp", format, threads, false, child.Ok ? "no JSON on stdout" : child.Failure, null, null, null, null, null, null, null, null, null, gguf.LlamaType, shown, null);
        var j = JsonNode.Parse(child.JsonLine)!;
        return new EngineRun("llama.cpp", format, threads, true, null, D(j, "load_ms"), D(j, "prefill_tokens_per_s"), D(j, "decode_tokens_per_s"), D(j, "ttft_ms"),
            L(j, "peak_rss_bytes"), D(j, "read_bandwidth_bytes_per_s"), L(j, "weight_bytes_per_token"), D(j, "decode_bound_tokens_per_s"),
            D(j, "decode_fraction_of_bound"), gguf.LlamaType, shown, j);
    }

    private static double? D(JsonNode j, string key) => j[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
    private static long? L(JsonNode j, string key) => j[key] is JsonValue v && v.TryGetValue<long>(out var d) ? d : null;
    private static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y != 0 ? x / y : null;

    // The median of the runs' figure, over the runs that report it; null when none does.
    private static double? Median(List<EngineRun> runs, Func<EngineRun, double?> figure)
    {
        var values = runs.Select(figure).OfType<double>().ToList();
        return values.Count == 0 ? null : LlamaCppChild.Median(values);
    }

    // ---- output ----

    private static void Print(SameWeightsResult r)
    {
        Console.WriteLine();
        Console.WriteLine($"{Path.GetFileName(r.Model)} ({r.SourceDtype}), {r.PromptTokens} prompt + {r.NewTokens} new tokens, greedy, median of {r.Repeats}; llama.cpp KV cache {r.LlamaKvType}, flash attention {r.LlamaFlashAttn}");
        Console.WriteLine($"Kiln checkpoints: f32 {r.KilnF32Checkpoint}, 16-bit ({r.Kiln16Dtype}) {r.Kiln16Checkpoint}; vocabulary {r.VocabularySource}");
        Console.WriteLine("GGUFs:");
        foreach (var g in r.Ggufs)
            Console.WriteLine(g.Error is not null ? $"  {g.LlamaType,-5} failed: {g.Error}" :$"  {g.LlamaType,-5} {g.Bytes / 1e6,10:F2} MB  weight {g.WeightBytesPerToken / 1e6,10:F2} MB/token  {string.Join(" ", g.TensorTypes.Select(kv => $"{kv.Key}:{kv.Value}"))}");
        if (r.Accuracy.Count > 0)
        {
            Console.WriteLine($"accuracy vs Kiln f32 logits, {r.AccuracyIds.Length} positions:");
            Console.WriteLine($"  {"format",-6} {"engine",-10} {"max |dlogit|",13} {"/ max |ref|",12} {"top-1 agree",12}");
            foreach (var x in r.Accuracy)
            {
                Console.WriteLine(x.Ok
                    ? $"  {x.Format,-6} {x.Engine,-10} {x.MaxAbsError,13:G4} {x.MaxAbsErrorOverMaxAbsReference,12:G4} {$"{x.Top1Agree}/{x.Positions}",12}"
                    : $"  {x.Format,-6} {x.Engine,-10} failed: {x.Error}");
            }
        }
        if (r.Runs.Count == 0) return;
        Console.WriteLine($"  {"format",-6} {"thr",3} {"engine",-10} {"prefill t/s",12} {"decode t/s",11} {"RSS MB",9} {"GB/s",6} {"MB/token",9} {"bound t/s",10} {"dec/bound",9}");
        foreach (var x in r.Runs)
        {
            var engine = r.Rounds == 1 ? x.Engine : $"{x.Engine} #{x.Round}";
            Console.WriteLine(x.Ok
                ? $"  {x.Format,-6} {x.Threads,3} {engine,-10} {F(x.PrefillTokensPerS, 12, 1)} {F(x.DecodeTokensPerS, 11, 1)} {F(x.PeakRssBytes / 1e6, 9, 1)} {F(x.ReadBandwidthBytesPerS / 1e9, 6, 1)} {F(x.WeightBytesPerToken / 1e6, 9, 2)} {F(x.DecodeBoundTokensPerS, 10, 1)} {F(x.DecodeFractionOfBound, 9, 2)}"
                : $"  {x.Format,-6} {x.Threads,3} {engine,-10} failed: {x.Error}");
        }
        Console.WriteLine(r.Rounds == 1 ? "Kiln / llama.cpp:" : $"Kiln / llama.cpp (medians of {r.Rounds} alternating rounds; decode by round after them):");
        Console.WriteLine($"  {"format",-6} {"thr",3} {"decode",8} {"prefill",8} {"peak RSS",9}");
        foreach (var x in r.Ratios)
            Console.WriteLine($"  {x.Format,-6} {x.Threads,3} {F(x.Decode, 8, 3)} {F(x.Prefill, 8, 3)} {F(x.PeakRss, 9, 3)}" +
                (r.Rounds == 1 ? "" : "   " + string.Join(" ", x.DecodeByRound.Select(d => F(d, 5, 2)))));
    }

    private static string F(double? value, int width, int decimals) =>
        (value is { } v ? v.ToString("F" + decimals, CultureInfo.InvariantCulture) : "-").PadLeft(width);

    private static double[] LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (IOException)
        {
            return [];
        }
    }

    private static void Timed(string what, Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        Log($"{what} ({clock.Elapsed.TotalSeconds:F1} s)");
    }

    private static void Log(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");
}
