using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Serve;

/// <summary>A `kiln serve` of its own: /health while the model loads, and a graceful SIGTERM.</summary>
public sealed class ServeLifecycleTests
{
    // A stream on this model runs for seconds (about 46 MB of fp32 weights read per token, 600 tokens),
    // so SIGTERM reaches the server while it is running; its greedy text has no end-of-sequence token.
    private const int LongStreamTokens = 600;

    [Fact]
    public async Task Sigterm_lets_running_streams_finish_takes_no_new_request_and_exits_0()
    {
        using var folder = new TempDir();
        var written = KilnCli.Run("testmodel", "--layers", "4", "--hidden", "512", "--heads", "8", "--kv-heads", "2", "--intermediate", "1408",
            "--vocab", "512", "--out", folder.Path);
        Assert.True(written.ExitCode == 0, written.Stderr);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(TestPaths.DefaultModel, file), folder.File(file));
        using var server = new ServeProcess(["--model", folder.Path, "--served-model-name", "long", "--slots", "2", "--threads", "1"]);
        // Before the "serving" line the model is still loading: /health says so with a 503.
        using (var early = await server.Http.GetAsync("/health"))
        {
            if (!server.Ready.IsCompleted) Assert.Equal(HttpStatusCode.ServiceUnavailable, early.StatusCode);
        }
        await server.WaitUntilHealthyAsync();

        var body = new JsonObject
        {
            ["model"] = "long", ["prompt"] = "Once upon a time", ["max_tokens"] = LongStreamTokens, ["temperature"] = 0, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        using var response = await server.Http.SendAsync(CompletionsTests.Request(body), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        // The stream is running when the signal comes.
        Assert.Contains("kiln_requests_running 1\n", await server.Http.GetStringAsync("/metrics"));

        server.Terminate();
        var data = new List<string> { events.Current.Data };
        while (await events.MoveNextAsync()) data.Add(events.Current.Data);
        await events.DisposeAsync();
        Assert.Equal("[DONE]", data[^1]);
        Assert.Equal(LongStreamTokens, JsonNode.Parse(data[^2])!["usage"]!["completion_tokens"]!.GetValue<int>());
        var last = JsonNode.Parse(data[^3])!["choices"]![0]!;
        Assert.Equal("length", last["finish_reason"]!.GetValue<string>());

        // No new request once shutdown began: refused (503) or, once the listener is closed, not connected.
        try
        {
            using var late = await server.Http.SendAsync(CompletionsTests.Request(new JsonObject { ["model"] = "long", ["prompt"] = "Hi" }));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        }
        catch (HttpRequestException)
        {
        }
        Assert.True(server.Process.WaitForExit(TimeSpan.FromSeconds(60)), server.Errors);
        Assert.True(server.Process.ExitCode == 0, server.Errors);
    }

    [Fact]
    public async Task A_model_without_a_chat_template_serves_completions_and_refuses_chat_with_a_clear_error()
    {
        using var folder = new TempDir();
        foreach (var file in Directory.GetFiles(TestPaths.DefaultModel)) File.Copy(file, Path.Combine(folder.Path, Path.GetFileName(file)));
        var configPath = Path.Combine(folder.Path, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        Assert.True(config.Remove("chat_template"));
        File.WriteAllText(configPath, config.ToJsonString());

        using var server = new ServeProcess(["--model", folder.Path, "--served-model-name", "plain", "--threads", "1"]);
        await server.WaitUntilHealthyAsync();
        var chat = new JsonObject { ["model"] = "plain", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }) };
        using var refused = await server.Http.SendAsync(CompletionsTests.Request(chat, "/v1/chat/completions"));
        await BadRequestTests.AssertErrorAsync(refused, 400, "messages", "chat without a template");
        Assert.Contains("no chat_template", JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!["message"]!.GetValue<string>());
        using var completion = await server.Http.SendAsync(CompletionsTests.Request(new JsonObject { ["model"] = "plain", ["prompt"] = "Hi", ["max_tokens"] = 4 }));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        Assert.Contains("no chat template", server.Errors);
    }
}
