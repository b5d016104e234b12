using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln;

/// <summary>
/// The one strict JSON reader for what Kiln reads from a checkpoint: config.json, generation_config.json,
/// the tokenizer files, the weights index and safetensors headers. Beyond well-formed JSON it refuses
/// bytes that are not UTF-8, strings that do not decode (lone surrogate escapes), numbers beyond the
/// range of a double (1e400) and duplicate keys,
/// which System.Text.Json would otherwise accept or report later as a different exception.
/// Every error is a one-line <see cref="KilnException"/> naming the file and the line or key.
/// </summary>
public static class JsonFile
{
    /// <summary>Files above this size are refused: tokenizer.json of a large vocabulary is tens of megabytes.</summary>
    public const long MaxLength = 256L << 20;

    /// <summary>Parses a file holding one JSON object; null when the file does not exist.</summary>
    public static JsonObject? ReadObject(string path) =>
        ReadRoot(path, JsonValueKind.Object, "a JSON object") is { } root ? JsonObject.Create(root) : null;

    /// <summary>Parses a file holding one JSON array; null when the file does not exist.</summary>
    public static JsonArray? ReadArray(string path, string expected = "a JSON array") =>
        ReadRoot(path, JsonValueKind.Array, expected) is { } root ? JsonArray.Create(root) : null;

    private static JsonElement? ReadRoot(string path, JsonValueKind kind, string expected)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) return null;
        byte[] bytes;
        using (var stream = RegularFile.OpenRead(path))
        {
            if (stream.Length > MaxLength)
                throw new KilnException($"{path}: {stream.Length} bytes is too large for a JSON file (limit {MaxLength} bytes)");
            bytes = new byte[stream.Length];
            try
            {
                stream.ReadExactly(bytes);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KilnException($"{path}: cannot read: {e.Message}", e);
            }
        }
        using var document = Parse(path, bytes);
        if (document.RootElement.ValueKind != kind)
            throw KilnException.InFile(path, "top level", $"expected {expected}, found {document.RootElement.ValueKind}");
        return document.RootElement.Clone();
    }

    /// <summary>
    /// Parses <paramref name="utf8"/> strictly. <paramref name="part"/> names the bytes within
    /// <paramref name="file"/> when they are not the whole file (a safetensors "header").
    /// </summary>
    public static JsonDocument Parse(string file, ReadOnlyMemory<byte> utf8, string? part = null)
    {
        var where = (long line) => part is null ? $"line {line}" : $"{part} line {line}";
        var invalid = FirstInvalidUtf8(utf8.Span);
        if (invalid >= 0)
            throw KilnException.InFile(file, where(LineOf(utf8.Span, invalid)), $"invalid UTF-8 at byte {invalid}");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8);
        }
        catch (JsonException e)
        {
            throw KilnException.InFile(file, where((e.LineNumber ?? 0) + 1), $"malformed JSON: {OneLine(e.Message)}", e);
        }
        try
        {
            CheckValues(file, part, document.RootElement, []);
            return document;
        }
        catch
        {
            document.Dispose();
            throw;
        }
    }

    // Every key unique within its object, every string decodable, every number finite. The path of the
    // current value is kept as a stack of steps and only spelled out ("rope_scaling.factor") for an error:
    // building it for every value would make a large tokenizer.json several times slower to read.
    private static void CheckValues(string file, string? part, JsonElement element, List<(string? Key, int Index)> path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    var name = HasEscape(JsonMarshal.GetRawUtf8PropertyName(property)) ? Decode(file, part, path, () => property.Name) : property.Name;
                    path.Add((name, 0));
                    if (!seen.Add(name)) throw KilnException.InFile(file, Field(part, path), "duplicate key");
                    CheckValues(file, part, property.Value, path);
                    path.RemoveAt(path.Count - 1);
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    path.Add((null, i++));
                    CheckValues(file, part, item, path);
                    path.RemoveAt(path.Count - 1);
                }
                break;
            case JsonValueKind.String:
                if (HasEscape(JsonMarshal.GetRawUtf8Value(element))) Decode(file, part, path, element.GetString);
                break;
            case JsonValueKind.Number:
                // 1e400 is valid JSON but no reader holds it: .NET reads infinity, Hugging Face's tokenizers aborts.
                if (!element.TryGetDouble(out var number) || !double.IsFinite(number))
                    throw KilnException.InFile(file, Field(part, path), $"number {element.GetRawText()} is out of range");
                break;
        }
    }

    // The bytes are valid UTF-8 already; only a \u escape can make a string that does not decode.
    private static bool HasEscape(ReadOnlySpan<byte> raw) => raw.IndexOf("\\u"u8) >= 0;

    private static string Decode(string file, string? part, List<(string? Key, int Index)> path, Func<string?> read)
    {
        try
        {
            return read()!;
        }
        catch (InvalidOperationException)
        {
            // A \uD800-style escape without its other half: valid JSON syntax, but no string.
            throw KilnException.InFile(file, Field(part, path), "a string escape is not valid UTF-16 (a lone surrogate)");
        }
    }

    private static string Field(string? part, List<(string? Key, int Index)> path)
    {
        var text = new StringBuilder();
        foreach (var (key, index) in path)
        {
            if (key is null) text.Append('[').Append(index).Append(']');
            else text.Append(text.Length == 0 ? "" : ".").Append(key);
        }
        var field = text.Length == 0 ? "top level" : text.ToString();
        return part is null ? field : $"{part} {field}";
    }


    private static long FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return -1;
        var offset = 0;
        while (offset < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed);
            if (status != OperationStatus.Done) return offset;
            offset += consumed;
        }
        return -1;
    }

    private static long LineOf(ReadOnlySpan<byte> bytes, long offset) => bytes[..(int)offset].Count((byte)'\n') + 1;

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
