using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Runtime;

/// <summary>
/// The parts of transformers' tokenizer_config.json that change encoding: whether BOS/EOS are added
/// and which tokens they are. Null means the file does not say.
/// </summary>
internal sealed record TokenizerConfig(bool? AddBosToken, bool? AddEosToken, string? BosToken, string? EosToken)
{
    public const string FileName = "tokenizer_config.json";

    private static readonly TokenizerConfig Empty = new(null, null, null, null);

    /// <summary>Reads the file if present; it is optional.</summary>
    public static TokenizerConfig Read(string path)
    {
        if (JsonFile.ReadObject(path) is not { } root) return Empty;
        return new TokenizerConfig(
            ReadBool(path, root, "add_bos_token"),
            ReadBool(path, root, "add_eos_token"),
            ReadToken(path, root, "bos_token"),
            ReadToken(path, root, "eos_token"));
    }

    private static bool? ReadBool(string path, JsonObject root, string field) => root[field] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw KilnException.InFile(path, field, "expected true, false or null"),
    };

    /// <summary>A special token of the file: transformers writes it as a string or as an AddedToken object with "content".</summary>
    internal static string? ReadToken(string path, JsonObject root, string field) => root[field] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
        _ => throw KilnException.InFile(path, field, "expected a string, an object with \"content\", or null"),
    };
}
