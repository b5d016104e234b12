using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Kiln.Server.OpenAi;

/// <summary>
/// POST /v1/completions: text continued from a prompt (a string, a one-string array, or an array of token
/// ids), as `kiln generate --prompt` continues it: the prompt is encoded with the model's tokenizer
/// (special tokens such as BOS added as the model adds them).
/// </summary>
public static class CompletionsEndpoint
{
    private static readonly HashSet<string> Honored = [.. GenerationParameters.Fields, "prompt"];

    public static async Task HandleAsync(HttpContext context, ServerState state)
    {
        var arrival = Stopwatch.GetTimestamp();
        var cancel = context.RequestAborted;
        var fields = await RequestFields.ReadAsync(context.Request, state.Options.MaxBodyBytes, cancel);
        fields.RejectOthers(Honored, GenerationParameters.IgnoredWhenDefault);
        state.CheckModel(fields.String("model"));
        var parameters = GenerationParameters.Read(fields, "max_tokens");
        var promptIds = PromptIds(fields, state);
        var run = new GenerationRun(state, promptIds, parameters, "prompt", arrival, cancel);
        var id = $"cmpl-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var model = state.Model.Id;

        if (!parameters.Stream)
        {
            var text = new StringBuilder();
            await foreach (var piece in run.Text(cancel)) text.Append(piece);
            var response = new CompletionResponse(id, "text_completion", created, model, [new CompletionChoice(0, text.ToString(), run.FinishReason)], run.Usage);
            await context.Response.WriteAsJsonAsync(response, OpenAiJsonContext.Default.CompletionResponse, cancellationToken: cancel);
            return;
        }
        var events = await ServerSentEvents.StartAsync(context.Response, cancel);
        await foreach (var piece in run.Text(cancel))
            await events.WriteAsync(new CompletionResponse(id, "text_completion", created, model, [new CompletionChoice(0, piece, null)], null), OpenAiJsonContext.Default.CompletionResponse, cancel);
        await events.WriteAsync(new CompletionResponse(id, "text_completion", created, model, [new CompletionChoice(0, "", run.FinishReason)], null), OpenAiJsonContext.Default.CompletionResponse, cancel);
        if (parameters.IncludeUsage)
            await events.WriteAsync(new CompletionResponse(id, "text_completion", created, model, [], run.Usage), OpenAiJsonContext.Default.CompletionResponse, cancel);
        await events.DoneAsync(cancel);
    }

    private static int[] PromptIds(RequestFields fields, ServerState state)
    {
        switch (fields.Get("prompt"))
        {
            case null:
                throw ApiException.BadRequest("You must provide a prompt.", "prompt");
            case { ValueKind: JsonValueKind.String } text:
                return state.Model.Tokenizer.Encode(text.GetString()!);
            case { ValueKind: JsonValueKind.Array } array when array.GetArrayLength() == 1 && array[0].ValueKind == JsonValueKind.String:
                return state.Model.Tokenizer.Encode(array[0].GetString()!);
            case { ValueKind: JsonValueKind.Array } array when array.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                var vocab = state.Model.Model.VocabSize;
                return [.. array.EnumerateArray().Select(e => e.TryGetInt32(out var t) && t >= 0 && t < vocab
                    ? t : throw ApiException.BadRequest($"'prompt': {e.GetRawText()} is not a token id of this model (0 to {vocab - 1}).", "prompt", "invalid_value"))];
            case { ValueKind: JsonValueKind.Array }:
                throw ApiException.BadRequest("'prompt' must be a string, an array of one string, or an array of token ids: this server runs one prompt per request.", "prompt", "unsupported_value");
            case var other:
                throw RequestFields.WrongType("prompt", "a string or an array of token ids", other.Value);
        }
    }
}
