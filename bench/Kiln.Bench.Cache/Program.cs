using Kiln.Bench;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Bench.Cache;
using Kiln.Checkpoints;

// The pipeline snapshot cache on Llama 3.1 8B and 70B shapes (sparse all-zero checkpoints: the pipeline
// reads headers only) and on the default model in a whole process; prints Markdown tables and writes
// bench/results/cache-*.json.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var arguments = BenchArguments.Parse(args);
var repo = BenchEnvironment.RepoRoot();
var kiln = arguments.Kiln ?? Path.Combine(repo, "src", "Kiln.Cli", "bin", "Release", "net10.0", "linux-x64", "kiln.dll");
if (!File.Exists(kiln)) throw new FileNotFoundException($"{kiln} not found: build it (dotnet build -c Release src/Kiln.Cli) or pass --kiln");
var work = arguments.Work ?? Directory.CreateTempSubdirectory("kiln-bench-cache-").FullName;
Directory.CreateDirectory(work);

try
{
    var models = arguments.Models.Select(m =>
    {
        var options = m == "8B" ? TestModelOptions.Llama3_8B : TestModelOptions.Llama3_70B;
        return PipelineBenchmark.Run(m, options with { MaxPositions = arguments.MaxPositions ?? options.MaxPositions }, work, arguments.Repeats);
    }).ToList();
    Console.Error.WriteLine("whole-process generate");
    var process = ProcessBenchmark.Run(kiln, work, arguments.ProcessRepeats);
    var result = new CacheBenchmarkResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), Environment.ProcessorCount, BenchEnvironment.CpuModel(),
        BenchEnvironment.MemoryGiB(), arguments.Repeats, arguments.ProcessRepeats, models, process);
    Print(result);
    var resultsDir = Path.Combine(repo, "bench", "results");
    Directory.CreateDirectory(resultsDir);
    var file = Path.Combine(resultsDir, $"cache-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    File.WriteAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
    Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
}
finally
{
    if (arguments.Work is null) Directory.Delete(work, recursive: true);
}
return 0;

static void Print(CacheBenchmarkResult r)
{
    Console.WriteLine($"{r.Date}, commit {r.Commit}, {r.Processors} logical processors, {r.Cpu}, {r.MemoryGiB:F0} GiB; " +
        $"max_position_embeddings {string.Join("/", r.Models.Select(m => m.MaxPositions).Distinct())}; in-process medians of {r.Repeats} (min..max), ms");
    Console.WriteLine();
    Console.WriteLine("| model | layers | nodes (export / point 1 / final) | cold | cold + save | save (both points) | save overhead | warm, point 1 | warm, final | cold / warm final |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
    foreach (var m in r.Models)
    {
        Console.WriteLine($"| {m.Model} | {m.Layers} | {m.ExportedNodes} / {m.Entries[0].Nodes} / {m.Entries[^1].Nodes} | {m.Cold} | {m.ColdWithSave} | {m.SaveMs:F0} | " +
            $"{m.SaveOverheadPercent:F1} % ({m.MedianDifferencePercent:F1} %) | {m.WarmPointOne} | {m.WarmFinal} | {m.SpeedupFinal:F1}x |");
    }
    Console.WriteLine();
    Console.WriteLine("save overhead: the median time inside the saves over the median cold time; in parentheses, the difference of the cold + save and cold medians (noisier).");
    Console.WriteLine();
    Console.WriteLine("| model | cold: export + pipeline | restore, point 1 | restore, final |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var m in r.Models)
        Console.WriteLine($"| {m.Model} | {m.ColdExportMs:F0} + {m.ColdPipelineMs:F0} | {m.WarmPointOneRestoreMs:F0} | {m.WarmFinalRestoreMs:F0} |");
    Console.WriteLine();
    Console.WriteLine("| model | entry | nodes | manifest.json | graph.json | buffers.safetensors | total |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var m in r.Models)
    {
        foreach (var e in m.Entries)
            Console.WriteLine($"| {m.Model} | {e.Point} | {e.Nodes} | {Size(e.ManifestBytes)} | {Size(e.GraphJsonBytes)} | {Size(e.BuffersBytes)} | {Size(e.TotalBytes)} |");
    }
    Console.WriteLine();
    Console.WriteLine("Restore of the final entry, by phase (median ms):");
    Console.WriteLine("| model | keys | manifest | read + verify files (SHA-256) | build graph from the bytes | of which: parse graph.json | of which: graph verifier | total |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|");
    foreach (var m in r.Models)
    {
        var b = m.Restore;
        Console.WriteLine($"| {m.Model} | {b.KeysMs:F1} | {b.ManifestMs:F1} | {b.VerifyFilesMs:F1} | {b.BuildGraphMs:F1} | {b.ParseGraphJsonMs:F1} | {b.VerifyGraphMs:F1} | {b.TotalMs:F1} |");
    }
    Console.WriteLine();
    Console.WriteLine("Cold pipeline by transform (median ms, nodes after):");
    foreach (var m in r.Models)
        Console.WriteLine($"{m.Model}: export {m.ColdExportMs:F0}, " + string.Join(", ", m.ColdTransforms.Select(t => $"{t.Name} {t.MedianMs:F1} ({t.NodesAfter})")));
    Console.WriteLine();
    Console.WriteLine($"Whole process, {r.Process.Command}, wall ms, median of {r.ProcessRepeats} (min..max):");
    Console.WriteLine("| no cache | cold (miss + save) | warm (hit, final) | cold / warm |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine($"| {r.Process.NoCache} | {r.Process.Cold} | {r.Process.Warm} | {r.Process.ColdOverWarm:F2}x |");
    Console.WriteLine();
    foreach (var m in r.Models)
    {
        Console.WriteLine($"target {m.Model}: warm final {m.SpeedupFinal:F1}x faster than cold ({(m.SpeedupFinal >= 10 ? "met" : "NOT met")} for 10x); " +
            $"save overhead {m.SaveOverheadPercent:F1} % ({(m.SaveOverheadPercent <= 10 ? "met" : "NOT met")} for 10 %)");
    }
}

static string Size(long bytes) => bytes switch
{
    >= 1 << 20 => $"{bytes / (double)(1 << 20):F1} MiB",
    >= 1 << 10 => $"{bytes / 1024.0:F0} KiB",
    _ => $"{bytes} B",
};


/// <summary>Everything one run measured, as written to bench/results/cache-*.json.</summary>
internal sealed record CacheBenchmarkResult(string Date, string? Commit, int Processors, string Cpu, double MemoryGiB, int Repeats, int ProcessRepeats,
    IReadOnlyList<ModelCacheResult> Models, ProcessResult Process);
