using System.Diagnostics;

namespace Kiln.Bench.Serve;

/// <summary>
/// Aggregate decode tokens/s of streams started together, and over which window it was counted:
/// <see cref="DecodeThroughput.DecodeOnly"/> or the labelled fallback <see cref="DecodeThroughput.WholePhase"/>.
/// </summary>
public sealed record DecodeRate(double TokensPerSecond, string Window, double WindowMs);

/// <summary>
/// Aggregate decode tokens/s of streams started together, from the server's own counters, read every 100 ms
/// in one scrape: generated tokens (kiln_generation_tokens_total), first tokens (the count of
/// kiln_time_to_first_token_seconds) and finished requests (kiln_requests_finished_total). The window is
/// "decode-only": from the first reading at which every stream has its first token to the last reading
/// before any finished, so every prompt is prefilled, none has ended, and each engine step decodes all of
/// them. (The clients' own timings cannot say this: a streamed piece of text may hold several tokens.)
/// When that window holds fewer than two readings (the first stream ended before the last one's prompt was
/// in: raise --stream-tokens), the whole phase counts instead, from the first reading with a first token to
/// the end, labelled "whole phase" (a lower bound: it includes the prefills and the staggered ends); NaN when
/// even that is too short.
/// </summary>
public static class DecodeThroughput
{
    public const string DecodeOnly = "decode-only";
    public const string WholePhase = "whole phase, prefills included";

    private static readonly string[] Counters =
    [
        "kiln_generation_tokens_total", "kiln_time_to_first_token_seconds_count",
        "kiln_requests_finished_total{finish_reason=\"length\"}", "kiln_requests_finished_total{finish_reason=\"stop\"}",
        "kiln_requests_finished_total{finish_reason=\"cancelled\"}",
    ];

    private sealed record Reading(double Ms, double Tokens, double FirstTokens, double Finished);

    public static async Task<DecodeRate> MeasureAsync(ServerProcess server, string model, List<int[]> prompts, int maxTokens, Stopwatch clock, CancellationToken cancel)
    {
        var before = await ReadAsync(server, clock, cancel);
        var streams = prompts.Select(p => StreamRequest.RunAsync(server.Http, model, p, maxTokens, clock, cancel)).ToList();
        var readings = new List<Reading>();
        while (!streams.All(s => s.IsCompleted))
        {
            readings.Add(await ReadAsync(server, clock, cancel));
            await Task.Delay(100, cancel);
        }
        await Task.WhenAll(streams);
        readings.Add(await ReadAsync(server, clock, cancel));
        List<Reading> window = [.. readings.Where(r => r.FirstTokens - before.FirstTokens >= prompts.Count && r.Finished == before.Finished)];
        var label = DecodeOnly;
        if (window.Count < 2) (window, label) = ([.. readings.Where(r => r.FirstTokens > before.FirstTokens)], WholePhase);
        if (window.Count < 2) return new DecodeRate(double.NaN, label, 0);
        var ms = window[^1].Ms - window[0].Ms;
        return new DecodeRate((window[^1].Tokens - window[0].Tokens) / (ms / 1000), label, ms);
    }

    private static async Task<Reading> ReadAsync(ServerProcess server, Stopwatch clock, CancellationToken cancel)
    {
        var v = (await server.MetricsAsync(Counters, cancel)).Select(x => double.IsNaN(x) ? 0 : x).ToArray();
        return new Reading(clock.Elapsed.TotalMilliseconds, v[0], v[1], v[2] + v[3] + v[4]);
    }
}
