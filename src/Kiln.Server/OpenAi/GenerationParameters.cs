using System.Text.Json;
using Kiln.Runtime;

namespace Kiln.Server.OpenAi;

/// <summary>
/// The generation fields completions and chat completions share: the token limit, sampling (OpenAI's
/// defaults: temperature 1, top_p 1; top_k is an extension, 0 = off), seed, stop strings and streaming.
/// </summary>
public sealed record GenerationParameters(int? MaxTokens, SamplingOptions Sampling, string[] Stop, bool Stream, bool IncludeUsage)
{
    /// <summary>OpenAI's limit on stop strings.</summary>
    public const int MaxStopStrings = 4;

    /// <summary>Fields both endpoints honor (each adds its own).</summary>
    public static readonly string[] Fields = ["model", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "stream_options", "user"];

    /// <summary>Fields accepted only at the value that turns them off (n = 1 choice, no penalties, no log probabilities).</summary>
    public static readonly IReadOnlyDictionary<string, Func<JsonElement, bool>> IgnoredWhenDefault = new Dictionary<string, Func<JsonElement, bool>>
    {
        ["n"] = v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n == 1,
        ["presence_penalty"] = IsZero,
        ["frequency_penalty"] = IsZero,
        ["logprobs"] = v => v.ValueKind == JsonValueKind.False,
        ["echo"] = v => v.ValueKind == JsonValueKind.False,
        ["best_of"] = v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n == 1,
        ["logit_bias"] = v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(),
        ["parallel_tool_calls"] = v => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        ["store"] = v => v.ValueKind == JsonValueKind.False,
        ["response_format"] = v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var type) && type.ValueEquals("text"),
    };

    /// <summary>Reads the fields (after <see cref="RequestFields.RejectOthers"/>); <paramref name="maxTokensFields"/> name the token limit (chat also takes max_completion_tokens).</summary>
    public static GenerationParameters Read(RequestFields fields, params string[] maxTokensFields)
    {
        int? maxTokens = null;
        foreach (var name in maxTokensFields) maxTokens ??= (int?)fields.Integer(name, 1, int.MaxValue);
        var temperature = fields.Number("temperature", 0, 2) ?? 1;
        var topP = fields.Number("top_p", double.Epsilon, 1) ?? 1;
        var topK = (int)(fields.Integer("top_k", 0, int.MaxValue) ?? 0);
        var seed = (int?)fields.Integer("seed", int.MinValue, int.MaxValue);
        var stream = fields.Bool("stream") ?? false;
        var options = fields.Object("stream_options");
        if (options is not null && !stream)
            throw ApiException.BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options");
        options?.RejectOthers(new HashSet<string> { "include_usage" }, new Dictionary<string, Func<JsonElement, bool>>());
        return new GenerationParameters(maxTokens, new SamplingOptions((float)temperature, topK, (float)topP, seed), Stops(fields), stream,
            options?.Bool("include_usage") ?? false);
    }

    private static bool IsZero(JsonElement v) => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0;

    // "stop": a string or an array of up to 4 strings.
    private static string[] Stops(RequestFields fields)
    {
        switch (fields.Get("stop"))
        {
            case null:
                return [];
            case { ValueKind: JsonValueKind.String } one:
                return [one.GetString()!];
            case { ValueKind: JsonValueKind.Array } many:
                var stops = many.EnumerateArray().Select(s => s.ValueKind == JsonValueKind.String ? s.GetString()! : throw RequestFields.WrongType("stop", "a string or an array of strings", s)).ToArray();
                if (stops.Length > MaxStopStrings) throw ApiException.BadRequest($"'stop' holds {stops.Length} strings; at most {MaxStopStrings} are allowed.", "stop");
                return stops;
            case var other:
                throw RequestFields.WrongType("stop", "a string or an array of strings", other.Value);
        }
    }
}
