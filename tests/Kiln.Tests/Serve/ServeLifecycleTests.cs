using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Serve;

/// <summary>A `kiln serve` of its own: /health while the model loads, and a graceful SIGTERM.</summary>
public sealed class ServeLifecycleTests
{
    [Fact]
    public async Task Sigterm_lets_running_streams_finish_takes_no_new_request_and_exits_0()
    {
        using var server = new ServeProcess(["--slots", "2", "--threads", "1"], stepDelayMs: 15);
        // Before the "serving" line the model is still loading: /health says so with a 503.
        using (var early = await server.Http.GetAsync("/health"))
        {
            if (!server.Ready.IsCompleted) Assert.Equal(HttpStatusCode.ServiceUnavailable, early.StatusCode);
        }
        await server.WaitUntilHealthyAsync();

        var body = new JsonObject { ["model"] = "stories260K", ["prompt"] = "Once upon a time", ["max_tokens"] = 80, ["temperature"] = 0, ["stream"] = true, ["stop"] = "zzz" };
        using var response = await server.Http.SendAsync(CompletionsTests.Request(body), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());

        server.Terminate();
        var data = new List<string> { events.Current.Data };
        while (await events.MoveNextAsync()) data.Add(events.Current.Data);
        await events.DisposeAsync();
        Assert.Equal("[DONE]", data[^1]);
        var last = JsonNode.Parse(data[^2])!["choices"]![0]!;
        Assert.Equal("length", last["finish_reason"]!.GetValue<string>());

        // No new request once shutdown began: refused (503) or, once the listener is closed, not connected.
        try
        {
            using var late = await server.Http.SendAsync(CompletionsTests.Request(new JsonObject { ["model"] = "stories260K", ["prompt"] = "Hi" }));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        }
        catch (HttpRequestException)
        {
        }
        Assert.True(server.Process.WaitForExit(TimeSpan.FromSeconds(60)), server.Errors);
        Assert.True(server.Process.ExitCode == 0, server.Errors);
    }
}
