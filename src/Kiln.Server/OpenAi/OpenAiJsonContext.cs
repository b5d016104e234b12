using System.Text.Json.Serialization;

namespace Kiln.Server.OpenAi;

/// <summary>Source-generated JSON for the server's responses (no reflection, so it runs in the Native AOT kiln).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(ApiErrorBody))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatChunkResponse))]
[JsonSerializable(typeof(HealthStatus))]
public sealed partial class OpenAiJsonContext : JsonSerializerContext;
