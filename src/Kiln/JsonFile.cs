using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln;

/// <summary>Reads the JSON files of a checkpoint folder with one-line errors naming the file and the line.</summary>
public static class JsonFile
{
    /// <summary>Parses a file holding one JSON object; null when the file does not exist.</summary>
    public static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        JsonNode? node;
        try
        {
            using var stream = File.OpenRead(path);
            node = JsonNode.Parse(stream);
        }
        catch (JsonException e)
        {
            throw KilnException.InFile(path, $"line {e.LineNumber + 1}", $"malformed JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KilnException($"{path}: cannot read: {e.Message}", e);
        }
        return node as JsonObject ?? throw KilnException.InFile(path, "top level", "expected a JSON object");
    }
}
