using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Bench;
using Kiln.Bench.Serve;

// Load test of `kiln serve` on loopback (bench/README.md): an in-process measurement of one batched decode
// step at batch 1, 2, 4, 8; then, on the server, single-stream references, N concurrent streaming clients
// checked against them, aggregate decode tokens/s at 1 vs K streams, time to first token under load,
// optional disconnect rounds (slots and RSS) and cold vs warm starts. Every loop is bounded in count, the
// whole run by --timeout-s. Writes bench/results/serve-<UTC time>.json.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var a = ServeArguments.Parse(args);
var repo = BenchEnvironment.RepoRoot();
var native = Path.Combine(repo, "artifacts", "kiln", "kiln");
var kiln = a.Kiln ?? (File.Exists(native) ? native : Path.Combine(repo, "src", "Kiln.Cli", "bin", "Release", "net10.0", "linux-x64", "kiln.dll"));
if (!File.Exists(kiln)) throw new FileNotFoundException($"{kiln} not found: build (dotnet build -c Release) or pass --kiln");
var work = a.Work ?? Directory.CreateTempSubdirectory("kiln-bench-serve-").FullName;
Directory.CreateDirectory(work);
var clock = Stopwatch.StartNew();
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(a.TimeoutSeconds));
void Progress(string line) => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}");

var model = a.Model ?? LoadModel.Create(kiln, work, Progress);
var cache = Path.Combine(work, "cache");
string[] ServeArgs(string cacheDir) => ["--model", model, "--slots", $"{a.Slots}", "--cache-dir", cacheDir, .. a.Threads is { } t ? ["--threads", $"{t}"] : Array.Empty<string>()];
var loadBefore = File.ReadAllText("/proc/loadavg").Split(' ')[0];

// 0. In this process, before the server starts (not to share the cores with it): the cost of a decode step by batch size.
var steps = a.StepRepeats > 0 ? DecodeStepScaling.Measure(model, a.Threads, a.PromptTokens, a.StepRepeats, Progress) : [];

Progress($"starting kiln serve ({kiln}) on {model}");
var server = new ServerProcess(kiln, ServeArgs(cache));
var modelId = Path.GetFileName(model);
var failures = new List<string>();
try
{
    // 1. References: each prompt alone. Prompts whose greedy text stops early (an EOS) are skipped, so that
    //    every stream of the later phases runs its full length.
    var wanted = a.Clients * a.Requests;
    var random = new Random(1);
    var vocab = LoadModel.VocabSize(model);
    var prompts = new List<int[]>();
    var references = new List<StreamResult>();
    for (var candidate = 0; prompts.Count < wanted && candidate < 3 * wanted; candidate++)
    {
        int[] prompt = [1, .. Enumerable.Range(0, a.PromptTokens - 1).Select(_ => random.Next(3, vocab))];
        var reference = await StreamRequest.RunAsync(server.Http, modelId, prompt, a.MaxTokens, clock, timeout.Token);
        if (reference.FinishReason != "length") continue;
        prompts.Add(prompt);
        references.Add(reference);
        Progress($"reference {prompts.Count}/{wanted}: {reference.CompletionTokens} tokens in {reference.LastMs - reference.SentMs:F0} ms");
    }
    if (prompts.Count < wanted) throw new InvalidOperationException($"only {prompts.Count} of {3 * wanted} prompts ran to --max-tokens without an EOS");

    // 2. The load: every client sends its requests one after another, all clients at once.
    Progress($"{a.Clients} clients x {a.Requests} requests");
    var loadClock = Stopwatch.StartNew();
    var runs = await Task.WhenAll(Enumerable.Range(0, a.Clients).Select(async client =>
    {
        var mine = new List<(int Index, StreamResult Result)>();
        for (var r = 0; r < a.Requests; r++)
        {
            var index = client * a.Requests + r;
            mine.Add((index, await StreamRequest.RunAsync(server.Http, modelId, prompts[index], a.MaxTokens, clock, timeout.Token)));
        }
        return mine;
    }));
    var loadSeconds = loadClock.Elapsed.TotalSeconds;
    var results = runs.SelectMany(r => r).OrderBy(r => r.Index).ToList();
    var mismatches = results.Count(r => r.Result.Text != references[r.Index].Text || r.Result.CompletionTokens != references[r.Index].CompletionTokens);
    if (mismatches > 0) failures.Add($"{mismatches} of {results.Count} outputs differ from their single-stream output");
    var ttft = results.Select(r => r.Result.TimeToFirstTokenMs).ToList();

    // 3. Aggregate decode throughput: K streams started together (the first K prompts, --stream-tokens each),
    //    against one stream alone; tokens counted by the server, over the time when every stream was decoding
    //    (their prompts all prefilled, none finished), or, labelled, the whole phase when that window is empty.
    Progress($"1 stream, then {a.Streams} streams at once, {a.StreamTokens} tokens each");
    var single = await DecodeThroughput.MeasureAsync(server, modelId, prompts.Take(1).ToList(), a.StreamTokens, clock, timeout.Token);
    var aggregate = await DecodeThroughput.MeasureAsync(server, modelId, prompts.Take(a.Streams).ToList(), a.StreamTokens, clock, timeout.Token);

    // 4. Disconnects: each stream is dropped after its first event; slots must all be free and RSS flat.
    CancelResult? cancels = null;
    if (a.CancelRounds > 0)
    {
        Progress($"{a.CancelRounds} disconnects, {DisconnectRounds.Concurrency} at a time");
        cancels = await DisconnectRounds.RunAsync(server, modelId, a.CancelRounds, a.MaxTokens, timeout.Token);
        if (cancels.SlotsInUseAfter != 0) failures.Add($"{cancels.SlotsInUseAfter} slots still in use after the disconnects");
    }
    var coldMs = server.ReadyMs;
    server.Dispose();

    // 5. Starts: a fresh cache root (cold) against the one primed above (warm), alternating.
    var starts = new List<(string Kind, double Ms)>();
    for (var i = 0; i < a.StartRepeats; i++)
    {
        foreach (var kind in new[] { "cold", "warm" })
        {
            var root = kind == "cold" ? Path.Combine(work, $"cold-{i}") : cache;
            using var started = new ServerProcess(kiln, ServeArgs(root));
            starts.Add((kind, started.ReadyMs));
            Progress($"{kind} start: ready in {started.ReadyMs:F0} ms");
            if (kind == "cold") Directory.Delete(root, recursive: true);
        }
    }

    var report = new ServeReport(DateTime.UtcNow.ToString("O"), BenchEnvironment.GitCommit(repo), Environment.ProcessorCount, BenchEnvironment.CpuModel(),
        loadBefore, File.ReadAllText("/proc/loadavg").Split(' ')[0], kiln, model, a, coldMs,
        results.Count, mismatches, loadSeconds, results.Sum(r => r.Result.CompletionTokens) / loadSeconds,
        Stats.Median(ttft), Stats.Percentile(ttft, 99), steps, single, aggregate, aggregate.TokensPerSecond / single.TokensPerSecond, cancels,
        starts.Where(s => s.Kind == "cold").Select(s => s.Ms).ToArray(), starts.Where(s => s.Kind == "warm").Select(s => s.Ms).ToArray(), failures);
    var file = Path.Combine(repo, "bench", "results", $"serve-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    Directory.CreateDirectory(Path.GetDirectoryName(file)!);
    File.WriteAllText(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
    Console.WriteLine($"{report.Date}, commit {report.Commit}, {report.Processors} logical processors ({report.Cpu}), load average {loadBefore} -> {report.LoadAfter}");
    Console.WriteLine($"{results.Count} requests from {a.Clients} clients: {mismatches} differ from their single-stream output; {report.TokensPerSecond:F1} tokens/s overall");
    Console.WriteLine($"time to first token under load: median {report.TtftMedianMs:F0} ms, p99 {report.TtftP99Ms:F0} ms");
    foreach (var step in steps)
        Console.WriteLine($"in-process decode step, batch {step.Rows}: {step.MedianMs:F1} ms, {step.RelativeToOneRow:F2}x batch 1 ({step.TokensPerSecond / steps[0].TokensPerSecond:F2}x its tokens/s)");
    Console.WriteLine($"server decode: 1 stream {single.TokensPerSecond:F1} tokens/s ({single.Window}), {a.Streams} streams {aggregate.TokensPerSecond:F1} tokens/s together " +
        $"({aggregate.Window}, {aggregate.WindowMs / 1000:F1} s): {report.Ratio:F2}x");
    if (cancels is not null)
    {
        Console.WriteLine($"{cancels.Rounds} disconnects in {cancels.Seconds:F0} s: slots in use after {cancels.SlotsInUseAfter} (all free {cancels.FreedMs:F0} ms after the last)");
        Console.WriteLine($"  RSS by quarter {string.Join(" -> ", cancels.RssBytes.Select(b => $"{b / 1e6:F0}"))} MB; managed heap {string.Join(" -> ", cancels.ManagedBytes.Select(b => $"{b / 1e6:F1}"))} MB; " +
            $"gen-0 collections {string.Join(" -> ", cancels.Gen0Collections)}");
    }
    if (starts.Count > 0)
        Console.WriteLine($"ready (/health 200): cold median {Stats.Median(report.ColdStartsMs):F0} ms, warm {Stats.Median(report.WarmStartsMs):F0} ms");
    foreach (var failure in failures) Console.WriteLine($"FAILED: {failure}");
    Console.WriteLine($"wrote {Path.GetRelativePath(repo, file)}");
    return failures.Count == 0 ? 0 : 1;
}
finally
{
    server.Dispose();
    if (a.Work is null) Directory.Delete(work, recursive: true);
}
