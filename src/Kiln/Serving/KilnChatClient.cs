using System.Runtime.CompilerServices;
using Kiln.Cache;
using Kiln.Chat;
using Kiln.Compile;
using Kiln.Runtime;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Kiln.Serving;

/// <summary>
/// Kiln as a Microsoft.Extensions.AI <see cref="IChatClient"/>, in process: the conversation goes through the
/// model's chat template (<see cref="ChatPrompt"/>) into a <see cref="ServingEngine"/>, the same engine
/// `kiln serve` runs, so calls from several threads decode together. Streaming yields the text as it is
/// generated; the last update carries the finish reason and the token counts. Sampling follows
/// <see cref="ChatOptions"/> with OpenAI's defaults (temperature 1, top-p 1; 0 is greedy); tools, JSON
/// response formats and penalties are not supported (<see cref="NotSupportedException"/>).
/// </summary>
public sealed class KilnChatClient : IChatClient
{
    private readonly ServingEngine engine;
    private readonly Tokenizer tokenizer;
    private readonly ChatTemplate template;
    private readonly IReadOnlySet<int> stopIds;
    private readonly string modelId;
    private readonly IDisposable[] owned;

    /// <summary>A client over an engine the caller runs (and disposes), e.g. the one a server shares.</summary>
    public KilnChatClient(ServingEngine engine, Tokenizer tokenizer, ChatTemplate template, IReadOnlySet<int> stopIds, string modelId)
        : this(engine, tokenizer, template, stopIds, modelId, [])
    {
    }

    private KilnChatClient(ServingEngine engine, Tokenizer tokenizer, ChatTemplate template, IReadOnlySet<int> stopIds, string modelId, IDisposable[] owned)
    {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.template = template;
        this.stopIds = stopIds;
        this.modelId = modelId;
        this.owned = owned;
        Metadata = new ChatClientMetadata("kiln", defaultModelId: modelId);
    }

    public ChatClientMetadata Metadata { get; }

    /// <summary>
    /// Loads a model folder (its tokenizer, chat template and stop ids; the graph compiled with the default
    /// pipeline, through <paramref name="cache"/> when given) and starts an engine of its own; disposing the
    /// client stops it and frees the model.
    /// </summary>
    public static KilnChatClient Load(string modelDirectory, EngineOptions? options = null, PipelineCache? cache = null, SessionSettings? settings = null)
    {
        var disposables = new Stack<IDisposable>();
        try
        {
            var chatTemplate = ChatTemplate.Load(modelDirectory);
            Tokenizer.EnsurePresent(modelDirectory);
            // The tokenizer loads while the weights are bound and the session made.
            var tokenizerLoad = Push(disposables, new TokenizerLoad(modelDirectory, cache));
            var model = Push(disposables, LoadedModel.Load(modelDirectory, settings, cache: cache, afterCompile: tokenizerLoad.Start));
            var tokenizer = Push(disposables, tokenizerLoad.Finish()!);
            var engine = Push(disposables, new ServingEngine(model, options ?? new EngineOptions()));
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory)));
            return new KilnChatClient(engine, tokenizer, chatTemplate, StopTokens.Of(model.Checkpoint), name, [.. disposables]);
        }
        catch
        {
            while (disposables.TryPop(out var disposable)) disposable.Dispose();
            throw;
        }
    }

    public Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prompt = ChatPrompt.Ids(template, tokenizer, Conversation(messages, options));
        var room = engine.Context - prompt.Length;
        if (options?.MaxOutputTokens is { } max && (max < 1 || max > room))
            throw new KilnException($"MaxOutputTokens: {max} does not fit: the prompt has {prompt.Length} tokens of the context of {engine.Context}");
        var sequence = engine.Submit(new SequenceRequest(prompt, options?.MaxOutputTokens ?? room, Sampling(options), stopIds), cancellationToken);
        var text = new CompletionText(tokenizer, prompt, options?.StopSequences ?? []);
        var (responseId, created, tokens) = ($"chatcmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow, 0);
        try
        {
            await foreach (var id in sequence.Tokens.ReadAllAsync(cancellationToken))
            {
                tokens++;
                var piece = text.Push(id);
                if (piece.Length > 0) yield return Update(piece);
                if (text.Stopped) break;
            }
            if (text.Flush() is { Length: > 0 } rest) yield return Update(rest);
        }
        finally
        {
            sequence.Cancel();
        }
        var stopId = sequence.FinishReason == FinishReason.Stop;
        if (stopId) tokens++;
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails
        {
            InputTokenCount = prompt.Length, OutputTokenCount = tokens, TotalTokenCount = prompt.Length + tokens,
        })])
        {
            FinishReason = text.Stopped || stopId ? ChatFinishReason.Stop : ChatFinishReason.Length,
            ResponseId = responseId, ModelId = modelId, CreatedAt = created,
        };

        ChatResponseUpdate Update(string piece) => new(ChatRole.Assistant, piece) { ResponseId = responseId, ModelId = modelId, CreatedAt = created };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? Metadata
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(engine) ? engine
        : null;

    public void Dispose()
    {
        foreach (var disposable in owned) disposable.Dispose();
    }

    // The messages as the template sees them: text only, with ChatOptions.Instructions as a first system message.
    private static List<Kiln.Chat.ChatMessage> Conversation(IEnumerable<AiChatMessage> messages, ChatOptions? options)
    {
        var conversation = new List<Kiln.Chat.ChatMessage>();
        if (options?.Instructions is { Length: > 0 } instructions) conversation.Add(new("system", instructions));
        foreach (var message in messages)
        {
            if (message.Contents.Any(c => c is not TextContent))
                throw new NotSupportedException($"KilnChatClient reads text only; a {message.Role} message holds {message.Contents.First(c => c is not TextContent).GetType().Name}");
            conversation.Add(new(message.Role.Value, message.Text));
        }
        if (conversation.Count == 0) throw new ArgumentException("no messages", nameof(messages));
        return conversation;
    }

    private static SamplingOptions Sampling(ChatOptions? options)
    {
        if (options is null) return new SamplingOptions(Temperature: 1);
        if (options.Tools is { Count: > 0 }) throw new NotSupportedException("KilnChatClient does not call tools");
        if (options.ResponseFormat is ChatResponseFormatJson) throw new NotSupportedException("KilnChatClient has no JSON response format");
        if (options.FrequencyPenalty is not (null or 0) || options.PresencePenalty is not (null or 0))
            throw new NotSupportedException("KilnChatClient applies no frequency or presence penalty");
        int? seed = options.Seed is { } s ? checked((int)s) : null;
        var sampling = new SamplingOptions(options.Temperature ?? 1, options.TopK ?? 0, options.TopP ?? 1, seed);
        sampling.Validate();
        return sampling;
    }

    private static T Push<T>(Stack<IDisposable> stack, T disposable) where T : IDisposable
    {
        stack.Push(disposable);
        return disposable;
    }
}
