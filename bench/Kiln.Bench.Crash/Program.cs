using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Bench;
using Kiln.Bench.Crash;

// Crash testing of the snapshot cache with real kiln processes: kill -9 trials against saves and
// 8-process rounds on an empty root. Prints the counts, writes bench/results/crash-*.json, and exits 1
// if any partial entry was visible, any output changed or any run failed (or a round compiled twice).
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var arguments = CrashArguments.Parse(args);
var repo = BenchEnvironment.RepoRoot();
var kilnDll = arguments.Kiln ?? Path.Combine(repo, "src", "Kiln.Cli", "bin", "Release", "net10.0", "linux-x64", "kiln.dll");
if (!File.Exists(kilnDll)) throw new FileNotFoundException($"{kilnDll} not found: build it (dotnet build -c Release src/Kiln.Cli) or pass --kiln");
var work = arguments.Work ?? Directory.CreateTempSubdirectory("kiln-bench-crash-").FullName;
CacheRoot.CreatePrivateDirectory(work);
var kiln = new KilnRunner(kilnDll);
var clock = Stopwatch.StartNew();
void Progress(string line) => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}");

try
{
    var uncached = kiln.Run(KilnRunner.Check, cacheRoot: null);
    var reference = uncached.ExitCode == 0 && uncached.NewIds is { } ids ? ids : throw new InvalidOperationException($"the uncached reference run failed: {uncached.Describe()}");
    Progress($"reference (kiln {string.Join(' ', KilnRunner.Check)} --no-cache): new_ids {reference}");
    var kills = KillTrials.Run(kiln, work, arguments.Trials, reference, new Random(arguments.Seed), Progress);
    var rounds = ConcurrencyRounds.Run(kiln, work, arguments.Rounds, reference, Progress);
    var passed = kills.PartialEntriesVisible == 0 && kills.ChangedOutputs == 0 && kills.FailedRuns == 0
        && rounds.PartialEntriesVisible == 0 && rounds.ChangedOutputs == 0 && rounds.FailedRuns == 0 && rounds.RoundsCompilingOnce == rounds.Rounds;

    var result = new CrashBenchmarkResult(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), Environment.ProcessorCount,
        BenchEnvironment.CpuModel(), BenchEnvironment.MemoryGiB(), "graph+weights", arguments.Seed, clock.Elapsed.TotalSeconds, reference, passed, kills, rounds);
    Print(result);
    var resultsDir = Path.Combine(repo, "bench", "results");
    Directory.CreateDirectory(resultsDir);
    var file = Path.Combine(resultsDir, $"crash-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    File.WriteAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
    Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
    return passed ? 0 : 1;
}
finally
{
    if (arguments.Work is null) Directory.Delete(work, recursive: true);
}

static void Print(CrashBenchmarkResult r)
{
    var (k, c) = (r.Kills, r.Concurrency);
    Console.WriteLine($"{r.Date}, commit {r.Commit}, {r.Processors} logical processors, {r.Cpu}, {r.MemoryGiB:F0} GiB; tier {r.Tier}, seed {r.Seed}, {r.Seconds:F0} s");
    foreach (var t in k.Timelines.TakeLast(2)) Console.WriteLine($"  timeline (last measured, median of 3): {t}");
    Console.WriteLine($"kill -9 trials: {k.Trials}; killed {k.Killed} ({k.KilledAtSaveStep} at a reported save step), finished before the kill {k.FinishedBeforeKill}");
    Console.WriteLine($"  kills inside a save: {k.KilledInsideSave}");
    Console.WriteLine($"  partial entries visible: {k.PartialEntriesVisible}");
    Console.WriteLine($"  changed outputs: {k.ChangedOutputs}");
    Console.WriteLine($"  failed runs: {k.FailedRuns}");
    Console.WriteLine($"  next run: {k.CheckHits} hits, {k.CheckMisses} misses ({string.Join(", ", k.CheckMissReasons.Select(p => $"{p.Key}: {p.Value}"))})");
    Console.WriteLine($"concurrency rounds: {c.Rounds} x {c.Processes} processes on an empty root; rounds compiling exactly once: {c.RoundsCompilingOnce}");
    Console.WriteLine($"  compiled/restored per round: {string.Join(" ", c.Results.Select(x => $"{x.Compiled}/{x.Restored}"))}");
    Console.WriteLine($"  partial entries visible: {c.PartialEntriesVisible}, changed outputs: {c.ChangedOutputs}, failed runs: {c.FailedRuns}");
    foreach (var failure in k.Failures.Concat(c.Failures)) Console.WriteLine($"FAILURE: {failure}");
    Console.WriteLine(r.Passed ? "PASSED" : "FAILED");
}

/// <summary>Everything one run counted, as written to bench/results/crash-*.json. Tier: the cache tiers tested ("graph+weights": the killed and checked runs save and restore both).</summary>
internal sealed record CrashBenchmarkResult(string Date, string? Commit, int Processors, string Cpu, double MemoryGiB, string Tier, int Seed, double Seconds,
    string ReferenceNewIds, bool Passed, KillSummary Kills, ConcurrencySummary Concurrency);
