using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Kiln.Bench;
using Kiln.Benchmarks;
using Kiln.Compile;
using Kiln.Runtime;
using LLama.Native;

namespace Kiln.Bench.LlamaCpp;

/// <summary>One engine's logits of the quantized GGUF against a reference, over every position of the ids.</summary>
internal sealed record GgufLogitsComparison(string Engine, string Against, double MaxAbsDifference, double MaxAbsDifferenceOverMaxAbsReference, int Top1Agree, int Positions);

internal sealed record GgufLogitsResult(string DateUtc, string? Commit, string Source, string Type, bool Pure, Dictionary<string, int> TensorTypes,
    int[] Ids, string LlamaKvType, List<GgufLogitsComparison> Comparisons);

/// <summary>
/// `gguf-logits`: Kiln reading a GGUF that llama.cpp's own quantizer wrote, against llama.cpp on the same
/// file and the same ids. From an F32 GGUF (given, or written here from a Llama checkpoint folder as
/// `same-weights` writes it; default: the default model's, whose 172-column ffn_down llama.cpp cannot
/// quantize to Q8_0 or Q4_0), llama_model_quantize writes the
/// Q8_0 (or Q4_0) file; Kiln (in this process, one thread) and llama.cpp (the llama-logits child: one batch,
/// logits at every position, KV cache f32, flash attention off, one thread) compute the logits of seeded ids
/// (BOS first); each is compared with the other and with Kiln's logits of the F32 source. Kiln also runs the file
/// with quantize_weights off (the blocks dequantized to f32, activations unquantized): both engines quantize
/// each activation row to 8-bit blocks before multiplying (llama.cpp with an f16 scale, Kiln with an f32 one),
/// so their distance to that run shows what the engines add, and their distance to each other stays of that
/// size only if Kiln reads the blocks and the q/k rows as llama.cpp wrote them.
/// </summary>
internal static class GgufLogitsCheck
{
    public const string Usage = "usage: gguf-logits [--gguf F32.gguf | --model DIR] [--type q8_0|q4_0] [--pure] [--tokens N=64] [--work DIR]";

    public static int Run(string[] args)
    {
        var repo = BenchEnvironment.RepoRoot();
        var source = Path.Combine(repo, "models", "stories260K-gguf", "stories260K.gguf");
        var (type, pure, tokens) = ("q8_0", false, 64);
        string? folder = null;
        var work = Path.Combine(Path.GetTempPath(), "kiln-gguf-logits");
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            switch (args[i])
            {
                case "--gguf": source = Value(); break;
                case "--model": folder = Value(); break;
                case "--type": type = Value(); break;
                case "--pure": pure = true; break;
                case "--tokens": tokens = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--work": work = Value(); break;
                default: throw new ArgumentException($"unknown option {args[i]}\n{Usage}");
            }
        }
        var ftype = type switch
        {
            "q8_0" => LLamaFtype.MOSTLY_Q8_0,
            "q4_0" => LLamaFtype.MOSTLY_Q4_0,
            _ => throw new ArgumentException($"--type: q8_0 or q4_0, not {type}\n{Usage}"),
        };
        Directory.CreateDirectory(work);
        if (folder is not null) source = HfToGguf.Write(folder, Path.Combine(work, $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(folder))}-f32.gguf"), GgmlType.F32).Path;
        var quantized = Path.Combine(work, $"{Path.GetFileNameWithoutExtension(source)}-{type}{(pure ? "-pure" : "")}.gguf");
        LlamaQuantize.Run(source, quantized, ftype, pure, threads: 1);
        Dictionary<string, int> types;
        using (var file = Kiln.Checkpoints.Gguf.GgufFile.Open(quantized))
            types = file.Header.Tensors.GroupBy(t => Kiln.Checkpoints.Gguf.GgmlTypes.Name(t.Type)).ToDictionary(g => g.Key, g => g.Count());
        Console.WriteLine($"{Path.GetFileName(quantized)}, written by llama_model_quantize: {string.Join(", ", types.Select(t => $"{t.Key} {t.Value}"))}");

        var settings = new SessionSettings(IntraOpThreads: 1);
        int vocab;
        int[] ids;
        float[] kiln, dequantized, reference;
        using (var model = LoadedModel.Load(quantized, settings))
        {
            vocab = model.VocabSize;
            ids = ModelBenchmark.SeededPrompt(vocab, tokens, seed: 1, bos: model.Checkpoint.Config["bos_token_id"]?.GetValue<long>() is { } bos ? (int)bos : null);
            kiln = model.Forward([.. ids.Select(i => (long)i)], [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)]);
        }
        using (var model = LoadedModel.Load(quantized, settings, Kiln.Transforms.PipelineConfig.Load(null, ["quantize_weights.enabled=false"])))
            dequantized = model.Forward([.. ids.Select(i => (long)i)], [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)]);
        using (var model = LoadedModel.Load(source, settings))
            reference = model.Forward([.. ids.Select(i => (long)i)], [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)]);

        var outFile = Path.Combine(work, "llama-logits.bin");
        var child = ChildProcess.Self(["llama-logits", "--gguf", quantized, "--ids", string.Join(' ', ids), "--out", outFile,
            "--kv-type", "f32", "--flash-attn", "off", "--threads", "1"], timeoutS: 600);
        if (!child.Ok) throw new InvalidOperationException($"llama-logits failed: {child.Failure}");
        var llama = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outFile)).ToArray();
        if (llama.Length != kiln.Length) throw new InvalidOperationException($"llama.cpp gave {llama.Length} logits, Kiln {kiln.Length}");

        List<GgufLogitsComparison> comparisons =
        [
            Compare("kiln", "llama.cpp", kiln, llama, vocab),
            Compare("kiln", "kiln dequantized", kiln, dequantized, vocab),
            Compare("llama.cpp", "kiln dequantized", llama, dequantized, vocab),
            Compare("kiln", "kiln f32 source", kiln, reference, vocab),
            Compare("llama.cpp", "kiln f32 source", llama, reference, vocab),
        ];
        Console.WriteLine($"{ids.Length} seeded ids (BOS first), every position; llama.cpp: one batch, KV cache f32, flash attention off; 1 thread each");
        foreach (var c in comparisons)
            Console.WriteLine($"{c.Engine,-10} vs {c.Against,-16} largest |difference| {c.MaxAbsDifference:G4} ({c.MaxAbsDifferenceOverMaxAbsReference:P3} of the largest |logit|), top-1 agree {c.Top1Agree}/{c.Positions}");

        var result = new GgufLogitsResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), folder ?? Path.GetRelativePath(repo, source), type, pure, types, ids, "f32", comparisons);
        var resultsDir = Path.Combine(repo, "bench", "results");
        Directory.CreateDirectory(resultsDir);
        var path = Path.Combine(resultsDir, $"gguf-logits-{type}-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(result, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
        Console.WriteLine($"wrote {Path.GetRelativePath(repo, path)}");
        return 0;
    }

    private static GgufLogitsComparison Compare(string engine, string against, float[] actual, float[] expected, int vocab)
    {
        double largest = 0, scale = 0;
        var agree = 0;
        for (var p = 0; p < actual.Length / vocab; p++)
        {
            var a = actual.AsSpan(p * vocab, vocab);
            var e = expected.AsSpan(p * vocab, vocab);
            for (var v = 0; v < vocab; v++)
            {
                largest = Math.Max(largest, Math.Abs(a[v] - e[v]));
                scale = Math.Max(scale, Math.Abs(e[v]));
            }
            if (Sampler.ArgMax(a) == Sampler.ArgMax(e)) agree++;
        }
        return new GgufLogitsComparison(engine, against, largest, largest / scale, agree, actual.Length / vocab);
    }
}
