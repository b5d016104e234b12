using System.Diagnostics;
using System.Runtime.CompilerServices;
using Kiln.Serving;

namespace Kiln.Server.OpenAi;

/// <summary>
/// One request's generation: checks the token limit against the context, submits the prompt to the engine
/// (a full queue is a 429, a server shutting down a 503), then yields the text as it streams, cut at the
/// stop strings, and records the request's metrics. A client that goes away cancels the request token,
/// which frees the sequence's slot at the engine's next step.
/// </summary>
public sealed class GenerationRun
{
    private readonly ServerState state;
    private readonly int[] promptIds;
    private readonly GenerationParameters parameters;
    private readonly long arrival;
    private readonly EngineSequence sequence;

    public GenerationRun(ServerState state, int[] promptIds, GenerationParameters parameters, string promptField, long arrival, CancellationToken cancel)
    {
        this.state = state;
        this.promptIds = promptIds;
        this.parameters = parameters;
        this.arrival = arrival;
        var engine = state.Engine;
        var context = engine.Context;
        if (promptIds.Length == 0) throw ApiException.BadRequest($"'{promptField}' holds no tokens.", promptField);
        var room = context - promptIds.Length;
        if (room < 1 || parameters.MaxTokens > room)
        {
            throw ApiException.BadRequest($"This model's maximum context length is {context} tokens. However, you requested " +
                $"{promptIds.Length + (parameters.MaxTokens ?? 1)} tokens ({promptIds.Length} in the {promptField}, {parameters.MaxTokens ?? 1} in the completion). " +
                $"Please reduce the length of the {promptField} or completion.", promptField, "context_length_exceeded");
        }
        var request = new SequenceRequest(promptIds, parameters.MaxTokens ?? room, parameters.Sampling, state.Model.StopIds);
        try
        {
            sequence = engine.Submit(request, cancel);
        }
        catch (KilnException e)
        {
            throw ApiException.BadRequest(e.Message, promptField);
        }
        catch (EngineBusyException e) when (e.Stopping)
        {
            throw new ApiException(503, $"The server is shutting down: {e.Message}.", "server_error", code: "shutting_down");
        }
        catch (EngineBusyException e)
        {
            throw new ApiException(429, $"The server is busy: {e.Message}. Retry after a moment.", "rate_limit_error", code: "queue_full");
        }
        state.Metrics.PromptTokens.Inc(promptIds.Length);
    }

    /// <summary>"stop" or "length", once the text has been read to its end.</summary>
    public string? FinishReason { get; private set; }

    /// <summary>Prompt and completion tokens: those the client was given text of, and the stop id that ended them.</summary>
    public Usage Usage => new(promptIds.Length, completionTokens, promptIds.Length + completionTokens);

    private int completionTokens;

    /// <summary>The generated text, piece by piece; ends when the sequence does.</summary>
    public async IAsyncEnumerable<string> Text([EnumeratorCancellation] CancellationToken cancel)
    {
        var text = new CompletionText(state.Model.Tokenizer, promptIds, parameters.Stop);
        var last = 0L;
        try
        {
            await foreach (var id in sequence.Tokens.ReadAllAsync(cancel))
            {
                var now = Stopwatch.GetTimestamp();
                if (last == 0) state.Metrics.TimeToFirstToken.Observe(Stopwatch.GetElapsedTime(arrival, now).TotalSeconds);
                else state.Metrics.InterTokenLatency.Observe(Stopwatch.GetElapsedTime(last, now).TotalSeconds);
                last = now;
                completionTokens++;
                state.Metrics.GeneratedTokens.Inc();
                var piece = text.Push(id);
                if (piece.Length > 0) yield return piece;
                if (text.Stopped) break;
            }
            if (!text.Stopped && text.Flush() is { Length: > 0 } rest) yield return rest;
            Finish(text.Stopped);
        }
        finally
        {
            // Whatever ended the reading (the end, a stop string, the client leaving), the slot is freed.
            sequence.Cancel();
            if (FinishReason is null) state.Metrics.Finished.WithLabels("cancelled").Inc();
        }
    }

    private void Finish(bool stopString)
    {
        var stopId = sequence.FinishReason == Serving.FinishReason.Stop;
        if (stopId)
        {
            completionTokens++;
            state.Metrics.GeneratedTokens.Inc();
        }
        FinishReason = stopString || stopId ? "stop" : "length";
        state.Metrics.Finished.WithLabels(FinishReason).Inc();
    }
}
