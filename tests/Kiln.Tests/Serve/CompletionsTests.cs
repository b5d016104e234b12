using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Serve;

/// <summary>
/// POST /v1/completions on a real `kiln serve`, streamed and not: the text equals `kiln generate`'s greedy
/// continuation of the same prompt; a stream is deltas ending in "data: [DONE]", with the usage chunk when
/// asked; stop strings end the text before them.
/// </summary>
public sealed class CompletionsTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private const string Prompt = "Once upon a time";
    private const int Tokens = 24;

    [Fact]
    public async Task A_completion_equals_kiln_generate_greedy()
    {
        var json = await PostAsync(new JsonObject { ["model"] = "stories260K", ["prompt"] = Prompt, ["max_tokens"] = Tokens, ["temperature"] = 0 });
        Assert.Equal(GenerateGreedy(Prompt, Tokens), json["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("length", json["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal("text_completion", json["object"]!.GetValue<string>());
        Assert.Equal(Tokens, json["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal(5, json["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(Tokens + 5, json["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_streamed_completion_sends_deltas_that_add_up_to_kiln_generate_greedy()
    {
        var events = await StreamAsync(shared.Server, new JsonObject
        {
            ["model"] = "stories260K", ["prompt"] = Prompt, ["max_tokens"] = Tokens, ["temperature"] = 0, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        });
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        var text = new StringBuilder();
        foreach (var chunk in chunks.Where(c => c["choices"]!.AsArray().Count > 0)) text.Append(chunk["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(GenerateGreedy(Prompt, Tokens), text.ToString());
        Assert.True(chunks.Count >= 10, "one chunk per piece of text");
        Assert.Equal("length", chunks[^2]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Empty(chunks[^1]["choices"]!.AsArray());
        Assert.Equal(Tokens, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_stop_string_ends_the_text_before_it()
    {
        var full = GenerateGreedy(Prompt, Tokens);
        var stop = " little";
        Assert.Contains(stop, full);
        foreach (var stream in new[] { false, true })
        {
            var request = new JsonObject { ["model"] = "stories260K", ["prompt"] = Prompt, ["max_tokens"] = Tokens, ["temperature"] = 0, ["stop"] = new JsonArray("zzz", stop), ["stream"] = stream };
            string text, reason;
            if (stream)
            {
                var chunks = (await StreamAsync(shared.Server, request))[..^1].Select(e => JsonNode.Parse(e)!["choices"]![0]!).ToList();
                text = string.Concat(chunks.Select(c => c["text"]!.GetValue<string>()));
                reason = chunks[^1]["finish_reason"]!.GetValue<string>();
            }
            else
            {
                var choice = (await PostAsync(request))["choices"]![0]!;
                (text, reason) = (choice["text"]!.GetValue<string>(), choice["finish_reason"]!.GetValue<string>());
            }
            Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], text);
            Assert.Equal("stop", reason);
        }
    }

    [Fact]
    public async Task A_prompt_of_token_ids_and_a_seeded_sample_repeat()
    {
        var request = new JsonObject { ["model"] = "stories260K", ["prompt"] = new JsonArray(1, 403, 407), ["max_tokens"] = 16, ["temperature"] = 0.9, ["top_k"] = 40, ["seed"] = 5 };
        var first = (await PostAsync(request))["choices"]![0]!["text"]!.GetValue<string>();
        Assert.Equal(first, (await PostAsync(request))["choices"]![0]!["text"]!.GetValue<string>());
        Assert.NotEmpty(first);
    }

    private async Task<JsonNode> PostAsync(JsonObject body)
    {
        using var response = await shared.Server.Http.SendAsync(Request(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!;
    }

    internal static HttpRequestMessage Request(JsonObject body, string path = "/v1/completions") => new(HttpMethod.Post, path)
    {
        Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        Headers = { Authorization = new AuthenticationHeaderValue("Bearer", ServeProcess.ApiKey) },
    };

    /// <summary>The data of every server-sent event of a streamed response.</summary>
    internal static async Task<List<string>> StreamAsync(ServeProcess server, JsonObject body, string path = "/v1/completions")
    {
        using var response = await server.Http.SendAsync(Request(body, path), HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = new List<string>();
        await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync()) events.Add(item.Data);
        return events;
    }

    /// <summary>What `kiln generate` prints after the prompt (greedy).</summary>
    internal static string GenerateGreedy(string prompt, int tokens)
    {
        var run = KilnCli.Run("generate", "--prompt", prompt, "--max-new-tokens", $"{tokens}");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.StartsWith(prompt, run.Stdout);
        return run.Stdout[prompt.Length..].TrimEnd('\n');
    }
}
