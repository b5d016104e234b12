using Kiln.Bench;
using System.Diagnostics;
using System.Text.Json;
using Kiln.Bench.LlamaCpp;
using Kiln.Benchmarks;

// Kiln vs llama.cpp (LLamaSharp, CPU backend). Without a sub-command: on stories260K, the same seeded
// prompt, token counts, thread count and greedy decoding; prints both decode speeds and writes
// bench/results/stories260K-*.json. `same-weights` and the tools: see bench/README.md.
// llama.cpp logs every tensor it loads; only the results matter here (failures quote the last lines).
LLama.Native.NativeLibraryConfig.All.WithLogCallback((_, message) => NativeLog.Add(message));
switch (args.FirstOrDefault())
{
    // Kiln vs llama.cpp on the same weights: see SameWeightsBenchmark and bench/README.md.
    case "same-weights":
        try
        {
            return SameWeightsBenchmark.Run(SameWeightsArguments.Parse(args[1..]));
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    // Kiln reading a GGUF that llama.cpp quantized, against llama.cpp on the same file: see GgufLogitsCheck.
    case "gguf-logits":
        try
        {
            return GgufLogitsCheck.Run(args[1..]);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    // The llama.cpp children of same-weights (one process per engine run, for its own peak RSS).
    case "llama-run": return LlamaCppChild.Run(args[1..]);
    case "llama-logits": return LlamaCppChild.Logits(args[1..]);
    // Tools: write one GGUF (f32|f16) from a checkpoint folder; print a GGUF's header; compare two GGUFs' tensors;
    // check the GGUF code without llama.cpp or kiln.
    case "gguf": return GgufTool.Convert(args[1..]);
    case "gguf-info": return GgufTool.Info(args[1..]);
    case "gguf-diff": return GgufTool.Diff(args[1..]);
    case "selftest": return SelfTest.Run();
}

var arguments = BenchArguments.Parse(args);
var repo = BenchEnvironment.RepoRoot();
var kilnModel = Path.Combine(repo, "models", "stories260K");
var gguf = Path.Combine(repo, "models", "stories260K-gguf", "stories260K.gguf");

var options = new BenchmarkOptions(arguments.PromptTokens, arguments.NewTokens, arguments.Threads, arguments.Repeats, Spinning: arguments.Spinning);
var kiln = ModelBenchmark.Run(kilnModel, options);
var llama = LlamaCppBenchmark.Run(gguf, kiln.PromptTokens, kiln.NewTokens, arguments.Threads, arguments.Repeats);

Console.WriteLine($"stories260K, {kiln.PromptTokens} prompt + {kiln.NewTokens} new tokens, {arguments.Threads} threads, greedy, median of {arguments.Repeats}, kiln spinning {(kiln.Spinning ? "on" : "off")}");
Console.WriteLine($"{"",-10} {"prefill tok/s",14} {"decode tok/s",13} {"ttft ms",9}");
Console.WriteLine($"{"kiln",-10} {kiln.PrefillTokensPerS,14:F1} {kiln.DecodeTokensPerS,13:F1} {kiln.TtftMs,9:F2}");
Console.WriteLine($"{"llama.cpp",-10} {llama.PrefillTokensPerS,14:F1} {llama.DecodeTokensPerS,13:F1} {llama.TtftMs,9:F2}");
var ratio = kiln.DecodeTokensPerS / llama.DecodeTokensPerS;
Console.WriteLine($"decode kiln / llama.cpp = {ratio:F3}");

var result = new ComparisonResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), Environment.ProcessorCount, kiln, llama, ratio);
var resultsDir = Path.Combine(repo, "bench", "results");
Directory.CreateDirectory(resultsDir);
var file = Path.Combine(resultsDir, $"stories260K-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
File.WriteAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions
{
    PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
}));
Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
return 0;


/// <summary>One run of this program: both engines and the decode ratio.</summary>
internal sealed record ComparisonResult(string DateUtc, string? Commit, int LogicalProcessors, BenchmarkResult Kiln, LlamaCppResult LlamaCpp, double DecodeRatioKilnOverLlamaCpp);
