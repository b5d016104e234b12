using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Models;

namespace Kiln.Runtime;

/// <summary>
/// What we read from a Hugging Face tokenizer.json ourselves: the token-to-id table, the special
/// added tokens, the post-processor's ids, and the JSON to hand to Hugging Face's own code for the rest.
/// The shapes we rely on (model.type, model.vocab, model.merges, added_tokens) are checked here, so a
/// malformed file is an error naming the field rather than a failure inside the native library.
/// </summary>
internal sealed record TokenizerJson(
    IReadOnlyDictionary<string, int> Ids,
    IReadOnlySet<int> SpecialIds,
    int VocabSize,
    PostProcessorTemplate Template,
    string CoreJson)
{
    public const string FileName = "tokenizer.json";

    private static readonly string[] ModelTypes = ["BPE", "WordPiece", "WordLevel", "Unigram"];

    public static TokenizerJson Read(string path)
    {
        var root = JsonFile.ReadObject(path) ?? throw new KilnException($"{path}: file not found");

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        ReadModel(path, root["model"], ids);
        var special = new HashSet<int>();
        switch (root["added_tokens"])
        {
            case null:
                break;
            case JsonArray added:
                for (var i = 0; i < added.Count; i++)
                {
                    var field = $"added_tokens[{i}]";
                    if (added[i] is not JsonObject token) throw KilnException.InFile(path, field, "expected an object");
                    var content = String(path, $"{field}.content", token["content"]);
                    var id = Id(path, $"{field}.id", token["id"]);
                    ids[content] = id;
                    if (token["special"] is { } flag && Bool(path, $"{field}.special", flag)) special.Add(id);
                    // The core never skips tokens itself: Tokenizer.Decode filters SpecialIds, so it can also keep them.
                    token["special"] = false;
                }
                break;
            default:
                throw KilnException.InFile(path, "added_tokens", "expected an array");
        }
        var template = PostProcessorTemplate.Parse(path, root["post_processor"]);
        // Tokenizer.Encode adds the template's ids itself, after applying tokenizer_config.json.
        root["post_processor"] = null;
        var vocabSize = ids.Count == 0 ? 0 : ids.Values.Max() + 1;
        return new TokenizerJson(ids, special, vocabSize, template, root.ToJsonString());
    }

    /// <summary>A token id: an integer in [0, <see cref="ConfigLimits.MaxVocab"/>).</summary>
    public static int Id(string path, string field, JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var id) && id >= 0 && id < ConfigLimits.MaxVocab
            ? id
            : throw KilnException.InFile(path, field, $"expected a token id (an integer from 0 to {ConfigLimits.MaxVocab - 1}), got {node?.ToJsonString() ?? "nothing"}");

    public static string String(string path, string field, JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>()
            : throw KilnException.InFile(path, field, $"expected a string, got {node?.ToJsonString() ?? "nothing"}");

    private static bool Bool(string path, string field, JsonNode node) =>
        node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False
            ? v.GetValue<bool>()
            : throw KilnException.InFile(path, field, $"expected true or false, got {node.ToJsonString()}");

    private static void ReadModel(string path, JsonNode? node, Dictionary<string, int> ids)
    {
        if (node is not JsonObject model) throw KilnException.InFile(path, "model", "missing or not an object");
        // Files written by older tokenizers versions may leave the type out; the library then infers it.
        if (model["type"] is { } typeNode && !ModelTypes.Contains(String(path, "model.type", typeNode)))
            throw KilnException.InFile(path, "model.type", $"unknown tokenizer model '{typeNode}' (known: {string.Join(", ", ModelTypes)})");
        ReadVocab(path, model["vocab"], ids);
        switch (model["merges"])
        {
            case null:
                break;
            case JsonArray merges:
                for (var i = 0; i < merges.Count; i++)
                {
                    // "a b" in older files, ["a", "b"] in newer ones.
                    var ok = merges[i] is JsonValue text && text.GetValueKind() == JsonValueKind.String
                        || merges[i] is JsonArray { Count: 2 } pair && pair.All(p => p is JsonValue s && s.GetValueKind() == JsonValueKind.String);
                    if (!ok) throw KilnException.InFile(path, $"model.merges[{i}]", $"expected \"a b\" or [\"a\", \"b\"], got {merges[i]?.ToJsonString() ?? "null"}");
                }
                break;
            default:
                throw KilnException.InFile(path, "model.merges", "expected an array");
        }
    }

    // BPE, WordPiece and WordLevel store {"token": id}; Unigram stores [["token", score], ...] in id order.
    private static void ReadVocab(string path, JsonNode? vocab, Dictionary<string, int> ids)
    {
        switch (vocab)
        {
            case JsonObject map:
                foreach (var (token, id) in map) ids[token] = Id(path, $"model.vocab.{token}", id);
                break;
            case JsonArray list:
                if (list.Count > ConfigLimits.MaxVocab) throw KilnException.InFile(path, "model.vocab", $"{list.Count} entries is above the supported maximum of {ConfigLimits.MaxVocab}");
                for (var i = 0; i < list.Count; i++)
                {
                    var ok = list[i] is JsonArray { Count: 2 } entry && entry[1] is JsonValue score && score.GetValueKind() == JsonValueKind.Number;
                    if (!ok) throw KilnException.InFile(path, $"model.vocab[{i}]", $"expected [token, score], got {list[i]?.ToJsonString() ?? "null"}");
                    ids[String(path, $"model.vocab[{i}][0]", list[i]![0])] = i;
                }
                break;
            default:
                throw KilnException.InFile(path, "model.vocab", "missing or not an object/array");
        }
    }
}
