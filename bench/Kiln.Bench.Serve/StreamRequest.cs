using System.Diagnostics;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Bench.Serve;

/// <summary>What one streamed completion gave: its text, token count, finish reason, and when its pieces arrived (ms on a shared clock).</summary>
public sealed record StreamResult(string Text, int CompletionTokens, string FinishReason, double SentMs, double FirstMs, double LastMs)
{
    public double TimeToFirstTokenMs => FirstMs - SentMs;
}

/// <summary>A streamed, greedy /v1/completions request with a prompt of token ids.</summary>
public static class StreamRequest
{
    public static async Task<StreamResult> RunAsync(HttpClient http, string model, int[] prompt, int maxTokens, Stopwatch clock, CancellationToken cancel)
    {
        var body = new JsonObject
        {
            ["model"] = model, ["prompt"] = new JsonArray([.. prompt.Select(id => (JsonNode)id)]), ["max_tokens"] = maxTokens, ["temperature"] = 0,
            ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        var sent = clock.Elapsed.TotalMilliseconds;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancel)}");
        var text = new StringBuilder();
        var (first, last, tokens, reason) = (double.NaN, double.NaN, 0, "");
        await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync(cancel)).EnumerateAsync(cancel))
        {
            if (item.Data == "[DONE]") break;
            var chunk = JsonNode.Parse(item.Data)!;
            if (chunk["usage"] is { } usage) tokens = usage["completion_tokens"]!.GetValue<int>();
            if (chunk["choices"]!.AsArray() is not [var choice, ..]) continue;
            var now = clock.Elapsed.TotalMilliseconds;
            if (double.IsNaN(first)) first = now;
            last = now;
            text.Append(choice!["text"]!.GetValue<string>());
            if (choice["finish_reason"] is { } finish) reason = finish.GetValue<string>();
        }
        return new StreamResult(text.ToString(), tokens, reason, sent, first, last);
    }

    /// <summary>Starts a stream, reads its first event, and goes away (the server must free the slot).</summary>
    public static async Task AbandonAsync(HttpClient http, string model, int[] prompt, int maxTokens, CancellationToken cancel)
    {
        var body = new JsonObject { ["model"] = model, ["prompt"] = new JsonArray([.. prompt.Select(id => (JsonNode)id)]), ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = true };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        response.EnsureSuccessStatusCode();
        await using var events = SseParser.Create(await response.Content.ReadAsStreamAsync(cancel)).EnumerateAsync(cancel).GetAsyncEnumerator(cancel);
        await events.MoveNextAsync();
    }
}
