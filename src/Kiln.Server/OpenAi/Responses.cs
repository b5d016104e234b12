using System.Text.Json.Serialization;

namespace Kiln.Server.OpenAi;

// The JSON shapes of OpenAI's API that this server writes (snake_case through OpenAiJsonContext). Fields
// OpenAI always sends are written even when null ("logprobs": null, "finish_reason": null mid-stream).

public sealed record ApiErrorBody(ApiErrorDetail Error);

public sealed record ApiErrorDetail(string Message, string Type, string? Param, string? Code);

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);

public sealed record ModelList(ModelCard[] Data)
{
    public string Object => "list";
}

/// <summary>One model; <see cref="MaxModelLen"/> (an extension, as vLLM's) is the context a request may use.</summary>
public sealed record ModelCard(string Id, long Created, int MaxModelLen)
{
    public string Object => "model";
    public string OwnedBy => "kiln";
}

public sealed record CompletionResponse(string Id, string Object, long Created, string Model, CompletionChoice[] Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

public sealed record CompletionChoice(int Index, string Text, string? FinishReason)
{
    public string? Logprobs => null;
}

public sealed record ChatCompletionResponse(string Id, string Object, long Created, string Model, ChatChoice[] Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

public sealed record ChatChoice(int Index, AssistantMessage Message, string? FinishReason)
{
    public string? Logprobs => null;
}

public sealed record AssistantMessage(string Content)
{
    public string Role => "assistant";
}

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, string? FinishReason)
{
    public string? Logprobs => null;
}

/// <summary>What one chunk adds: the role in the first, text in the others, nothing in the last.</summary>
public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

public sealed record HealthStatus(string Status);

public sealed record ChatChunkResponse(string Id, long Created, string Model, ChatChunkChoice[] Choices, Usage? Usage)
{
    public string Object => "chat.completion.chunk";
}
