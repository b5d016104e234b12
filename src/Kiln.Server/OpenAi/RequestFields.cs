using System.Text.Json;

namespace Kiln.Server.OpenAi;

/// <summary>
/// The fields of a JSON request body, read one by one with OpenAI's checks: a field of the wrong type or out
/// of range, or one this server does not honor, is a 400 naming it, never silently ignored. JSON null counts
/// as absent, as OpenAI's API treats it.
/// </summary>
public sealed class RequestFields
{
    private readonly JsonElement root;

    private RequestFields(JsonElement root) => this.root = root;

    /// <summary>Reads the body (at most the server's body limit, else 413); malformed JSON or a non-object is a 400.</summary>
    public static async Task<RequestFields> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancel)
    {
        if (request.ContentLength > maxBytes)
        {
            await DrainAsync(request, cancel);
            throw TooLarge($"{request.ContentLength} bytes; the limit is {maxBytes}");
        }
        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body, default, cancel);
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("The request body must be a JSON object.");
            return new RequestFields(document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(e.Message);
        }
    }

    // Most bytes of an oversized body read (and dropped) before answering 413; a larger one is cut off.
    private const long DrainLimit = 64 << 20;

    private static ApiException TooLarge(string detail) => new(413, $"The request body is larger than this server accepts ({detail}).", code: "request_too_large");

    // A client that sends its body without waiting (no "Expect: 100-continue") would find the connection
    // closed under it and never read the 413: so an oversized body of a stated length is read to its end
    // (up to DrainLimit) and dropped before the answer.
    private static async Task DrainAsync(HttpRequest request, CancellationToken cancel)
    {
        if (request.ContentLength > DrainLimit || request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is not { IsReadOnly: false } limit) return;
        limit.MaxRequestBodySize = DrainLimit;
        var buffer = new byte[81920];
        while (await request.Body.ReadAsync(buffer, cancel) > 0) { }
    }

    /// <summary>
    /// Refuses any field not in <paramref name="honored"/>, except those in <paramref name="ignoredWhenDefault"/>
    /// left at the value that means "off" (for instance n = 1, logprobs = false).
    /// </summary>
    public void RejectOthers(IReadOnlySet<string> honored, IReadOnlyDictionary<string, Func<JsonElement, bool>> ignoredWhenDefault)
    {
        foreach (var field in root.EnumerateObject())
        {
            if (honored.Contains(field.Name) || field.Value.ValueKind == JsonValueKind.Null) continue;
            if (ignoredWhenDefault.TryGetValue(field.Name, out var isDefault))
            {
                if (isDefault(field.Value)) continue;
                throw ApiException.BadRequest($"'{field.Name}' is not supported by this server with the value {field.Value.GetRawText()}.", field.Name, "unsupported_value");
            }
            throw ApiException.BadRequest($"Unrecognized request argument supplied: {field.Name}", field.Name, "unrecognized_argument");
        }
    }

    public JsonElement? Get(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string? String(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        var v => throw WrongType(name, "a string", v.Value),
    };

    public bool? Bool(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        var v => throw WrongType(name, "a boolean", v.Value),
    };

    public long? Integer(string name, long min, long max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n)) throw WrongType(name, "an integer", v);
        if (n < min || n > max) throw ApiException.BadRequest($"{n} is out of range for '{name}': expected {min} to {max}.", name, "invalid_value");
        return n;
    }

    public double? Number(string name, double min, double max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var x)) throw WrongType(name, "a number", v);
        if (!(x >= min && x <= max)) throw ApiException.BadRequest($"{x} is out of range for '{name}': expected {min} to {max}.", name, "invalid_value");
        return x;
    }

    /// <summary>An object field's own fields (e.g. stream_options).</summary>
    public RequestFields? Object(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } v => new RequestFields(v),
        var v => throw WrongType(name, "an object", v.Value),
    };

    public static ApiException WrongType(string name, string expected, JsonElement value) =>
        ApiException.BadRequest($"Invalid type for '{name}': expected {expected}, but got {Kind(value)}.", name, "invalid_type");

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
