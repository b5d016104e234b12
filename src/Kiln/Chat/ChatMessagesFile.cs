using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Chat;

/// <summary>
/// A conversation in a JSON file: an array of messages, each an object with a string "role" and a "content"
/// that is a string, an array of content parts, or null. Other fields (tool_calls, name, ...) go to the
/// template as they are, as transformers passes them.
/// </summary>
public static class ChatMessagesFile
{
    public static JsonArray Read(string path)
    {
        var messages = JsonFile.ReadArray(path, "a JSON array of messages") ?? throw new KilnException($"{path}: file not found");
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message)
                throw KilnException.InFile(path, $"[{i}]", $"expected an object with role and content, found {Kind(messages[i])}");
            if (!message.TryGetPropertyValue("role", out var role)) throw KilnException.InFile(path, $"[{i}].role", "missing");
            if (Kind(role) != "String") throw KilnException.InFile(path, $"[{i}].role", $"expected a string, found {Kind(role)}");
            if (!message.TryGetPropertyValue("content", out var content)) throw KilnException.InFile(path, $"[{i}].content", "missing");
            if (Kind(content) is not ("String" or "Array" or "Null"))
                throw KilnException.InFile(path, $"[{i}].content", $"expected a string, an array of content parts or null, found {Kind(content)}");
        }
        return messages;
    }

    private static string Kind(JsonNode? node) => node is null ? nameof(JsonValueKind.Null) : node.GetValueKind().ToString();
}
