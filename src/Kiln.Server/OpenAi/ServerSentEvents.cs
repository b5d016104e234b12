using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Kiln.Server.OpenAi;

/// <summary>A streamed response: server-sent events "data: {json}", each flushed at once, ending with "data: [DONE]".</summary>
public sealed class ServerSentEvents
{
    private static readonly byte[] Prefix = "data: "u8.ToArray();
    private static readonly byte[] Separator = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private readonly HttpResponse response;

    private ServerSentEvents(HttpResponse response) => this.response = response;

    public static async Task<ServerSentEvents> StartAsync(HttpResponse response, CancellationToken cancel)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.StartAsync(cancel);
        return new ServerSentEvents(response);
    }

    public async Task WriteAsync<T>(T value, JsonTypeInfo<T> type, CancellationToken cancel)
    {
        await response.Body.WriteAsync(Prefix, cancel);
        await JsonSerializer.SerializeAsync(response.Body, value, type, cancel);
        await response.Body.WriteAsync(Separator, cancel);
        await response.Body.FlushAsync(cancel);
    }

    /// <summary>An error after the stream began (the status is already sent): one event in OpenAI's error shape.</summary>
    public Task WriteErrorAsync(ApiException error, CancellationToken cancel) => WriteAsync(error.Body, OpenAiJsonContext.Default.ApiErrorBody, cancel);

    public async Task DoneAsync(CancellationToken cancel)
    {
        await response.Body.WriteAsync(Done, cancel);
        await response.Body.FlushAsync(cancel);
    }
}
