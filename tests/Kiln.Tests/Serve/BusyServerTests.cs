using System.Globalization;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json.Nodes;
using Kiln.Serving;
using System.Text.RegularExpressions;

namespace Kiln.Tests.Serve;

/// <summary>
/// One slot, one place in the queue, and every engine step paced by <see cref="EngineOptions.AfterStep"/>
/// (the server hosted in-process, so that it can be given that hook): a server that stays busy long enough
/// to watch, and that counts its steps.
/// </summary>
public sealed class BusyServer : IAsyncLifetime
{
    // Long beside the time a disconnect takes to reach the server, even on a busy machine.
    private static readonly TimeSpan StepPause = TimeSpan.FromMilliseconds(100);
    private long steps;

    public BusyServer() => Server = new InProcessServer(new EngineOptions(Slots: 1, MaxWaiting: 1, AfterStep: Step));

    public InProcessServer Server { get; }

    /// <summary>Steps the engine has run so far.</summary>
    public long Steps => Interlocked.Read(ref steps);

    public Task InitializeAsync() => Server.WaitUntilHealthyAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    private void Step()
    {
        Interlocked.Increment(ref steps);
        Thread.Sleep(StepPause);
    }
}

/// <summary>
/// A full queue answers 429 with Retry-After; a client that disconnects mid-stream frees its slot within a
/// step (seen in /metrics, counted in engine steps), and its place goes to the next request.
/// </summary>
public sealed partial class BusyServerTests(BusyServer busy) : IClassFixture<BusyServer>
{
    private static JsonObject Long(bool stream = true) => new() { ["model"] = "stories260K", ["prompt"] = "Once upon a time", ["max_tokens"] = 400, ["temperature"] = 0, ["stream"] = stream };

    [Fact]
    public async Task A_full_queue_answers_429_with_a_retry_hint_and_the_server_goes_on()
    {
        var http = busy.Server.Http;
        using var running = await http.SendAsync(CompletionsTests.Request(Long()), HttpCompletionOption.ResponseHeadersRead);
        await FirstEventAsync(running);
        using var waitingCancel = new CancellationTokenSource();
        var waiting = http.SendAsync(CompletionsTests.Request(Long()), HttpCompletionOption.ResponseHeadersRead, waitingCancel.Token);
        await WaitForMetricAsync("kiln_requests_waiting", 1);

        using var refused = await http.SendAsync(CompletionsTests.Request(Long(stream: false)));
        await BadRequestTests.AssertErrorAsync(refused, 429, null, "third request");
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());

        running.Dispose();
        waitingCancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await WaitForMetricAsync("kiln_kv_slots_in_use", 0);
        await WaitForMetricAsync("kiln_requests_waiting", 0);
        using var after = await http.SendAsync(CompletionsTests.Request(new JsonObject { ["model"] = "stories260K", ["prompt"] = "Hi", ["max_tokens"] = 2 }));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_client_that_disconnects_frees_its_slot_within_a_step()
    {
        var cancelledBefore = await MetricAsync("kiln_requests_finished_total{finish_reason=\"cancelled\"}");
        for (var i = 0; i < 5; i++)
        {
            long stepsAtDisconnect;
            using (var response = await busy.Server.Http.SendAsync(CompletionsTests.Request(Long()), HttpCompletionOption.ResponseHeadersRead))
            {
                await FirstEventAsync(response);
                Assert.Equal(1, await MetricAsync("kiln_kv_slots_in_use"));
                stepsAtDisconnect = busy.Steps;
            }
            await WaitForMetricAsync("kiln_kv_slots_in_use", 0);
            // With no sequence left the engine runs no step, so the count stops where the slot was freed: at
            // most the step running when the client left, and one more for the disconnect to reach the server.
            var stepsAfter = busy.Steps - stepsAtDisconnect;
            Assert.True(stepsAfter <= 2, $"freed {stepsAfter} steps after the disconnect");
        }
        Assert.Equal(cancelledBefore + 5, await MetricAsync("kiln_requests_finished_total{finish_reason=\"cancelled\"}"));
        // Fewer tokens were generated than five full requests would have.
        Assert.True(await MetricAsync("kiln_generation_tokens_total") < 5 * 400);
    }

    private static async Task FirstEventAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync();
        await using var events = SseParser.Create(stream).EnumerateAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
    }

    private async Task<double> MetricAsync(string name)
    {
        var text = await busy.Server.Http.GetStringAsync("/metrics");
        var line = text.Split('\n').SingleOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private async Task WaitForMetricAsync(string name, double value)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (await MetricAsync(name) != value)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30)) Assert.Fail($"{name} stayed at {await MetricAsync(name)}, not {value}");
            await Task.Delay(20);
        }
    }
}
