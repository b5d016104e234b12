using System.Buffers;
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
    public static JsonObject? ReadObject(string path)
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
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw KilnException.InFile(path, "top level", $"expected a JSON object, found {document.RootElement.ValueKind}");
        return JsonObject.Create(document.RootElement.Clone());
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
            CheckValues(file, part, document.RootElement, "");
            return document;
        }
        catch
        {
            document.Dispose();
            throw;
        }
    }

    // Every key unique within its object, every string decodable, every number finite; fields are named by their dotted path.
    private static void CheckValues(string file, string? part, JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    var name = Decode(file, part, path, () => property.Name);
                    var child = path.Length == 0 ? name : $"{path}.{name}";
                    if (!seen.Add(name)) throw KilnException.InFile(file, Field(part, child), "duplicate key");
                    CheckValues(file, part, property.Value, child);
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray()) CheckValues(file, part, item, $"{path}[{i++}]");
                break;
            case JsonValueKind.String:
                Decode(file, part, path, element.GetString);
                break;
            case JsonValueKind.Number:
                // 1e400 is valid JSON but no reader holds it: .NET reads infinity, Hugging Face's tokenizers aborts.
                if (!element.TryGetDouble(out var number) || !double.IsFinite(number))
                    throw KilnException.InFile(file, Field(part, path.Length == 0 ? "top level" : path), $"number {element.GetRawText()} is out of range");
                break;
        }
    }

    private static string Decode(string file, string? part, string path, Func<string?> read)
    {
        try
        {
            return read()!;
        }
        catch (InvalidOperationException)
        {
            // A \uD800-style escape without its other half: valid JSON syntax, but no string.
            throw KilnException.InFile(file, Field(part, path.Length == 0 ? "top level" : path), "a string escape is not valid UTF-16 (a lone surrogate)");
        }
    }

    private static string Field(string? part, string path) => part is null ? path : $"{part} {path}";

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
