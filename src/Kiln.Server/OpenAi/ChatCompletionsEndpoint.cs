using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Kiln.Serving;

namespace Kiln.Server.OpenAi;

/// <summary>
/// POST /v1/chat/completions: the messages go through the model's chat template (<see cref="ChatPrompt"/>)
/// and the assistant's answer comes back whole or as a stream of deltas. A model without a chat template
/// answers 400 here (its /v1/completions still works).
/// </summary>
public static class ChatCompletionsEndpoint
{
    private static readonly HashSet<string> Honored = [.. GenerationParameters.Fields, "messages", "max_completion_tokens"];

    public static async Task HandleAsync(HttpContext context, ServerState state)
    {
        var arrival = Stopwatch.GetTimestamp();
        var cancel = context.RequestAborted;
        var fields = await RequestFields.ReadAsync(context.Request, state.Options.MaxBodyBytes, cancel);
        fields.RejectOthers(Honored, GenerationParameters.IgnoredWhenDefault);
        state.CheckModel(fields.String("model"));
        var parameters = GenerationParameters.Read(fields, "max_completion_tokens", "max_tokens");
        var messages = Messages(fields);
        var template = state.Model.ChatTemplate
            ?? throw ApiException.BadRequest($"This model has no chat template ({state.Model.ChatTemplateProblem}); use /v1/completions.", "messages", "no_chat_template");
        int[] promptIds;
        try
        {
            promptIds = ChatPrompt.Ids(template, state.Model.Tokenizer, messages);
        }
        catch (KilnException e)
        {
            // The template refused the conversation (its raise_exception), or could not render it.
            throw ApiException.BadRequest(e.Message, "messages", "chat_template_error");
        }
        var run = new GenerationRun(state, promptIds, parameters, "messages", arrival, cancel);
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var model = state.Model.Id;

        if (!parameters.Stream)
        {
            var text = new StringBuilder();
            await foreach (var piece in run.Text(cancel)) text.Append(piece);
            var response = new ChatCompletionResponse(id, "chat.completion", created, model, [new ChatChoice(0, new AssistantMessage(text.ToString()), run.FinishReason)], run.Usage);
            await context.Response.WriteAsJsonAsync(response, OpenAiJsonContext.Default.ChatCompletionResponse, cancellationToken: cancel);
            return;
        }
        var events = await ServerSentEvents.StartAsync(context.Response, cancel);
        ChatChunkResponse Chunk(ChatDelta delta, string? finish) => new(id, created, model, [new ChatChunkChoice(0, delta, finish)], null);
        await events.WriteAsync(Chunk(new ChatDelta("assistant", ""), null), OpenAiJsonContext.Default.ChatChunkResponse, cancel);
        await foreach (var piece in run.Text(cancel)) await events.WriteAsync(Chunk(new ChatDelta(null, piece), null), OpenAiJsonContext.Default.ChatChunkResponse, cancel);
        await events.WriteAsync(Chunk(new ChatDelta(null, null), run.FinishReason), OpenAiJsonContext.Default.ChatChunkResponse, cancel);
        if (parameters.IncludeUsage) await events.WriteAsync(new ChatChunkResponse(id, created, model, [], run.Usage), OpenAiJsonContext.Default.ChatChunkResponse, cancel);
        await events.DoneAsync(cancel);
    }

    // "messages": a non-empty array of {role, content}, content a string or an array of text parts.
    private static List<Kiln.Chat.ChatMessage> Messages(RequestFields fields)
    {
        if (fields.Get("messages") is not { } value) throw ApiException.BadRequest("You must provide 'messages'.", "messages");
        if (value.ValueKind != JsonValueKind.Array) throw RequestFields.WrongType("messages", "an array", value);
        if (value.GetArrayLength() == 0) throw ApiException.BadRequest("'messages' must hold at least one message.", "messages", "empty_array");
        var messages = new List<Kiln.Chat.ChatMessage>();
        var index = 0;
        foreach (var message in value.EnumerateArray())
        {
            var where = $"messages[{index++}]";
            if (message.ValueKind != JsonValueKind.Object) throw RequestFields.WrongType(where, "an object", message);
            if (!message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest($"'{where}.role' must be a string.", $"{where}.role", "invalid_type");
            if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind != JsonValueKind.Null)
                throw ApiException.BadRequest($"'{where}.tool_calls': this server does not run tools.", $"{where}.tool_calls", "unsupported_value");
            messages.Add(new Kiln.Chat.ChatMessage(role.GetString()!, Content(message, where)));
        }
        return messages;
    }

    private static string Content(JsonElement message, string where)
    {
        if (!message.TryGetProperty("content", out var content)) throw ApiException.BadRequest($"'{where}.content' is missing.", $"{where}.content");
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return content.GetString()!;
            case JsonValueKind.Array:
                var text = new StringBuilder();
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || !type.ValueEquals("text")
                        || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                        throw ApiException.BadRequest($"'{where}.content': only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported.", $"{where}.content", "unsupported_value");
                    text.Append(partText.GetString());
                }
                return text.ToString();
            default:
                throw RequestFields.WrongType($"{where}.content", "a string or an array of text parts", content);
        }
    }
}
