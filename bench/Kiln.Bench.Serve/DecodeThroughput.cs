using System.Diagnostics;

namespace Kiln.Bench.Serve;

/// <summary>
/// Aggregate decode tokens/s of streams started together: the server's own count of generated tokens
/// (kiln_generation_tokens_total, read every 100 ms) over the time when all of them were decoding, from
/// the first reading after every stream had its first token to the last reading before any ended. Prompt
/// prefills and staggered starts and ends are outside that window. When that window holds fewer than two
/// readings (the first stream ended before the last one's prompt was in), the whole phase counts instead,
/// from the first token of any to the last (a lower bound: it includes the prefills); NaN when even that is
/// too short (a fast model: raise --max-tokens).
/// </summary>
public static class DecodeThroughput
{
    public static async Task<double> MeasureAsync(ServerProcess server, string model, List<int[]> prompts, int maxTokens, Stopwatch clock, CancellationToken cancel)
    {
        var streams = prompts.Select(p => StreamRequest.RunAsync(server.Http, model, p, maxTokens, clock, cancel)).ToList();
        var readings = new List<(double Ms, double Tokens)>();
        while (!streams.All(s => s.IsCompleted))
        {
            readings.Add((clock.Elapsed.TotalMilliseconds, server.Metric("kiln_generation_tokens_total")));
            await Task.Delay(100, cancel);
        }
        var results = await Task.WhenAll(streams);
        var (start, end) = (results.Max(r => r.FirstMs), results.Min(r => r.LastMs));
        List<(double Ms, double Tokens)> Within(double from, double to) => [.. readings.Where(r => r.Ms >= from && r.Ms <= to)];
        var window = Within(start, end);
        if (window.Count < 2) window = Within(results.Min(r => r.FirstMs), results.Max(r => r.LastMs));
        return window.Count < 2 ? double.NaN : (window[^1].Tokens - window[0].Tokens) / ((window[^1].Ms - window[0].Ms) / 1000);
    }
}
