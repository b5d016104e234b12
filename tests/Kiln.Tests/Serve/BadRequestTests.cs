using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Serve;

/// <summary>
/// Requests a real `kiln serve` refuses: each gets the right status and an error in OpenAI's shape
/// ({"error": {"message", "type", "param", "code"}}), and a good request right after still succeeds.
/// </summary>
public sealed class BadRequestTests(SharedServer shared) : IClassFixture<SharedServer>
{
    public static TheoryData<string, string, int, string?> Bodies => new()
    {
        { "malformed JSON", "{\"model\": \"stories260K\", \"prompt\": ", 400, null },
        { "not an object", "[1, 2]", 400, null },
        { "max_tokens of the wrong type", """{"model":"stories260K","prompt":"Hi","max_tokens":"ten"}""", 400, "max_tokens" },
        { "temperature of the wrong type", """{"model":"stories260K","prompt":"Hi","temperature":[1]}""", 400, "temperature" },
        { "stream of the wrong type", """{"model":"stories260K","prompt":"Hi","stream":"yes"}""", 400, "stream" },
        { "unknown model", """{"model":"gpt-4","prompt":"Hi"}""", 404, "model" },
        { "no model", """{"prompt":"Hi"}""", 400, "model" },
        { "no prompt", """{"model":"stories260K"}""", 400, "prompt" },
        { "max_tokens over the context", """{"model":"stories260K","prompt":"Hi","max_tokens":100000}""", 400, "prompt" },
        { "max_tokens zero", """{"model":"stories260K","prompt":"Hi","max_tokens":0}""", 400, "max_tokens" },
        { "n above 1", """{"model":"stories260K","prompt":"Hi","n":2}""", 400, "n" },
        { "an unsupported field", """{"model":"stories260K","prompt":"Hi","suffix":"end"}""", 400, "suffix" },
        { "logprobs asked", """{"model":"stories260K","prompt":"Hi","logprobs":3}""", 400, "logprobs" },
        { "a token id outside the vocabulary", """{"model":"stories260K","prompt":[1,99999]}""", 400, "prompt" },
        { "stream_options without stream", """{"model":"stories260K","prompt":"Hi","stream_options":{"include_usage":true}}""", 400, "stream_options" },
        { "five stop strings", """{"model":"stories260K","prompt":"Hi","stop":["a","b","c","d","e"]}""", 400, "stop" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task A_bad_completion_request_is_an_openai_error_and_the_server_goes_on(string what, string body, int status, string? param)
    {
        using var response = await shared.Server.Http.SendAsync(Post(body, ServeProcess.ApiKey));
        await AssertErrorAsync(response, status, param, what);
        await AssertStillServingAsync();
    }

    public static TheoryData<string, string, int, string?> ChatBodies => new()
    {
        { "empty messages", """{"model":"stories260K","messages":[]}""", 400, "messages" },
        { "no messages", """{"model":"stories260K"}""", 400, "messages" },
        { "messages not an array", """{"model":"stories260K","messages":"Hi"}""", 400, "messages" },
        { "a message without a role", """{"model":"stories260K","messages":[{"content":"Hi"}]}""", 400, "messages[0].role" },
        { "content of the wrong type", """{"model":"stories260K","messages":[{"role":"user","content":5}]}""", 400, "messages[0].content" },
        { "an image part", """{"model":"stories260K","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", 400, "messages[0].content" },
        { "tools", """{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"tools":[]}""", 400, "tools" },
        { "unknown model", """{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}""", 404, "model" },
        { "max_completion_tokens over the context", """{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":513}""", 400, "messages" },
    };

    [Theory]
    [MemberData(nameof(ChatBodies))]
    public async Task A_bad_chat_request_is_an_openai_error_and_the_server_goes_on(string what, string body, int status, string? param)
    {
        using var response = await shared.Server.Http.SendAsync(Post(body, ServeProcess.ApiKey, "/v1/chat/completions"));
        await AssertErrorAsync(response, status, param, what);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task A_ten_megabyte_body_is_refused_with_413()
    {
        var body = $$"""{"model":"stories260K","prompt":"{{new string('a', 10 << 20)}}"}""";
        using var response = await shared.Server.Http.SendAsync(Post(body, ServeProcess.ApiKey));
        await AssertErrorAsync(response, 413, null, "10 MB body");
        await AssertStillServingAsync();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-key")]
    [InlineData("test-key-012")]
    public async Task A_missing_or_wrong_api_key_is_refused_with_401(string? key)
    {
        using var response = await shared.Server.Http.SendAsync(Post("""{"model":"stories260K","prompt":"Hi"}""", key));
        await AssertErrorAsync(response, 401, null, $"key {key}");
        using var models = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        if (key is not null) models.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        await AssertErrorAsync(await shared.Server.Http.SendAsync(models), 401, null, "models");
        // Health and metrics are for the machine's own probes: no key.
        Assert.Equal(HttpStatusCode.OK, (await shared.Server.Http.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await shared.Server.Http.GetAsync("/metrics")).StatusCode);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task An_unknown_route_is_a_404_in_openai_shape()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/embeddings") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", ServeProcess.ApiKey) } };
        await AssertErrorAsync(await shared.Server.Http.SendAsync(request), 404, null, "route");
    }

    internal static HttpRequestMessage Post(string body, string? key, string path = "/v1/completions")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    internal static async Task AssertErrorAsync(HttpResponseMessage response, int status, string? param, string what)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{what}: {(int)response.StatusCode} {text}");
        var error = JsonNode.Parse(text)!["error"]!;
        Assert.False(string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()));
        Assert.False(string.IsNullOrWhiteSpace(error["type"]!.GetValue<string>()));
        Assert.Equal(param, error["param"]?.GetValue<string>());
    }

    private async Task AssertStillServingAsync()
    {
        using var response = await shared.Server.Http.SendAsync(Post("""{"model":"stories260K","prompt":"Hi","max_tokens":3,"temperature":0}""", ServeProcess.ApiKey));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }
}
