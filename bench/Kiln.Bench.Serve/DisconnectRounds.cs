using System.Diagnostics;

namespace Kiln.Bench.Serve;

/// <summary>The disconnect rounds: slots must be free after them, and resident memory flat from quarter to quarter.</summary>
public sealed record CancelResult(int Rounds, double Seconds, double SlotsInUseAfter, double FreedMs, double[] RssBytes, double[] ManagedBytes,
    double[] Gen0Collections, double CancelledTotal)
{
    public double RssBefore => RssBytes[0];
    public double RssAfter => RssBytes[^1];
}

/// <summary>
/// Streams dropped after their first event, <see cref="Concurrency"/> at a time (so that 1,000 rounds take
/// minutes, not an hour, on the 1 GB model), each with a 4-token prompt. Resident and managed memory are read
/// before the first and after each quarter of the rounds, with the count of gen-0 collections: a per-request
/// leak grows the heap across collections, quarter after quarter, where garbage grows it only until the next
/// one. The slot-free time runs from the last drop to kiln_kv_slots_in_use reading 0.
/// </summary>
public static class DisconnectRounds
{
    public const int Concurrency = 8;

    private static readonly string[] MemoryMetrics = ["process_working_set_bytes", "dotnet_total_memory_bytes", "dotnet_collection_count_total{generation=\"0\"}"];

    public static async Task<CancelResult> RunAsync(ServerProcess server, string model, int rounds, int maxTokens, CancellationToken cancel)
    {
        int[] prompt = [1, 5, 6, 7];
        var clock = Stopwatch.StartNew();
        var memory = new List<double[]> { await server.MetricsAsync(MemoryMetrics, cancel) };
        var done = 0;
        for (var quarter = 1; quarter <= 4; quarter++)
        {
            var end = rounds * quarter / 4;
            while (done < end)
            {
                var batch = Math.Min(Concurrency, end - done);
                await Task.WhenAll(Enumerable.Range(0, batch).Select(_ => StreamRequest.AbandonAsync(server.Http, model, prompt, maxTokens, cancel)));
                done += batch;
            }
            memory.Add(await server.MetricsAsync(MemoryMetrics, cancel));
        }
        var freed = Stopwatch.StartNew();
        while (await server.MetricAsync("kiln_kv_slots_in_use", cancel) > 0 && freed.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(10, cancel);
        var freedMs = freed.Elapsed.TotalMilliseconds;
        return new CancelResult(rounds, clock.Elapsed.TotalSeconds, await server.MetricAsync("kiln_kv_slots_in_use", cancel), freedMs,
            [.. memory.Select(m => m[0])], [.. memory.Select(m => m[1])], [.. memory.Select(m => m[2])],
            await server.MetricAsync("kiln_requests_finished_total{finish_reason=\"cancelled\"}", cancel));
    }
}
