using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Bench;
using Kiln.Bench.Start;

// Whole-process start times of kiln: fresh `kiln generate --max-new-tokens 1 --prompt-ids 1 --json`
// processes, uncached / cold / warm alternating, on the embedded default model and (with --large) a
// >= 1 GB fp32 and a >= 1 GB bf16 random checkpoint, and (with --compile-70b) cold and warm `kiln compile`
// processes on a sparse checkpoint of Llama 3.1 70B's shapes. Prints medians, the split reported by
// generate --json (pipeline, weights, session, first token) and peak RSS; writes bench/results/start-*.json.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var repo = BenchEnvironment.RepoRoot();
string? kiln = null, work = null;
var (repeats, large, compile70B) = (5, false, false);
var models = new List<string>();
var extra = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--kiln": kiln = Path.GetFullPath(Next()); break;
        case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--large": large = true; break;
        case "--compile-70b": compile70B = true; break;
        case "--model": models.Add(Path.GetFullPath(Next())); break;
        case "--work": work = Path.GetFullPath(Next()); break;
        case "--kiln-args": extra.AddRange(Next().Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
        default: throw new ArgumentException($"unknown argument {args[i]} (expected --kiln PATH, --repeats N, --large, --compile-70b, --model DIR, --work DIR, --kiln-args \"ARGS\")");
    }
}
kiln ??= Path.Combine(repo, "artifacts", "kiln", "kiln");
if (!File.Exists(kiln)) throw new FileNotFoundException($"{kiln} not found: run ./kiln --version once (it publishes the native kiln) or pass --kiln");
var ownWork = work is null;
work ??= Directory.CreateTempSubdirectory("kiln-bench-start-").FullName;
Directory.CreateDirectory(work);
var clock = Stopwatch.StartNew();
void Progress(string line) => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}");

try
{
    models.Insert(0, Path.Combine(repo, "models", "stories260K"));
    if (large)
    {
        models.Add(TestModel("llama-8l-2048-f32", "f32", layers: 8));
        models.Add(TestModel("llama-10l-2048-bf16", "bf16", layers: 10));
    }
    var results = models.Select(m => StartBenchmark.Run(kiln, m, extra, work, repeats, Progress)).ToList();
    var compiles = compile70B ? [CompileBenchmark.Run(kiln, SparseLlama70B(), work, repeats, Progress)] : new List<CompileResult>();
    var report = new StartBenchmarkResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), Environment.ProcessorCount,
        BenchEnvironment.CpuModel(), BenchEnvironment.MemoryGiB(), Path.GetRelativePath(repo, kiln), repeats, results, compiles);
    foreach (var r in results) Print(r);
    foreach (var c in compiles) PrintCompile(c);
    var file = Path.Combine(repo, "bench", "results", $"start-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    Directory.CreateDirectory(Path.GetDirectoryName(file)!);
    File.WriteAllText(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
    Console.WriteLine($"{report.Date}, commit {report.Commit}, {report.Processors} logical processors, {report.Cpu}; {kiln}; medians of {repeats}");
    Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
}
finally
{
    if (ownWork) Directory.Delete(work, recursive: true);
}

// A random Llama with hidden 2048 (16 heads, 8 kv heads, intermediate 5632, vocab 32000), written by kiln itself.
string TestModel(string name, string dtype, int layers)
{
    var directory = Path.Combine(work, name);
    if (Directory.Exists(directory)) return directory;
    Progress($"writing {name}");
    var start = new ProcessStartInfo(kiln, ["testmodel", "--layers", $"{layers}", "--hidden", "2048", "--heads", "16", "--kv-heads", "8",
        "--intermediate", "5632", "--vocab", "32000", "--dtype", dtype, "--out", directory]);
    using var process = Process.Start(start)!;
    process.WaitForExit();
    return process.ExitCode == 0 ? directory : throw new InvalidOperationException($"kiln testmodel for {name} failed");
}

// Llama 3.1 70B's shapes (80 layers, hidden 8192, GQA 64/8, vocab 128256, bf16) as a sparse checkpoint: real headers, no data.
string SparseLlama70B()
{
    var directory = Path.Combine(work, "llama3-70b-sparse");
    if (Directory.Exists(directory)) return directory;
    Progress("writing llama3-70b-sparse");
    var start = new ProcessStartInfo(kiln, ["testmodel", "--layers", "80", "--hidden", "8192", "--heads", "64", "--kv-heads", "8",
        "--intermediate", "28672", "--vocab", "128256", "--dtype", "bf16", "--sparse", "--out", directory]);
    using var process = Process.Start(start)!;
    process.WaitForExit();
    return process.ExitCode == 0 ? directory : throw new InvalidOperationException("kiln testmodel for the 70B-shaped checkpoint failed");
}

static void PrintCompile(CompileResult c)
{
    Console.WriteLine($"{c.Model}, kiln compile:");
    Console.WriteLine($"  cold {c.ColdWallMs:F0} ms ({c.MinColdWallMs:F0}..{c.MaxColdWallMs:F0}), warm {c.WarmWallMs:F0} ms ({c.MinWarmWallMs:F0}..{c.MaxWarmWallMs:F0}): cold / warm {c.ColdOverWarm:F2}x");
    Console.WriteLine($"  restore at the final point in the warm processes {c.WarmRestoreMs:F1} ms ({c.MinWarmRestoreMs:F1}..{c.MaxWarmRestoreMs:F1})");
}

static void Print(ModelResult r)
{
    Console.WriteLine($"{r.Model} ({r.CheckpointBytes / 1e9:F2} GB of safetensors):");
    Console.WriteLine("  kind       wall ms (min..max)    pipeline  weights  session  first token  peak RSS");
    foreach (var k in new[] { r.Uncached, r.Cold, r.Warm })
    {
        Console.WriteLine($"  {k.Kind,-9} {k.WallMs,7:F0} ({k.MinWallMs:F0}..{k.MaxWallMs:F0}){"",-4} {k.PipelineMs,8:F0} {k.WeightsMs,8:F0} {k.SessionMs,8:F0} {k.FirstTokenMs,12:F1} {k.PeakRssBytes / 1e6,7:F0} MB");
    }
    Console.WriteLine($"  cold / warm {r.ColdOverWarm:F2}x, cold / uncached {r.ColdOverUncached:F2}x");
}

internal sealed record StartBenchmarkResult(string Date, string? Commit, int Processors, string Cpu, double MemoryGiB, string Kiln, int Repeats,
    IReadOnlyList<ModelResult> Models, IReadOnlyList<CompileResult> Compiles);
