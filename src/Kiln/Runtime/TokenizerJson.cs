using System.Text.Json.Nodes;

namespace Kiln.Runtime;

/// <summary>
/// What we read from a Hugging Face tokenizer.json ourselves: the token-to-id table, the special
/// added tokens, the post-processor's ids, and the JSON to hand to Hugging Face's own code for the rest.
/// </summary>
internal sealed record TokenizerJson(
    IReadOnlyDictionary<string, int> Ids,
    IReadOnlySet<int> SpecialIds,
    int VocabSize,
    PostProcessorTemplate Template,
    string CoreJson)
{
    public const string FileName = "tokenizer.json";

    public static TokenizerJson Read(string path)
    {
        var root = JsonFile.ReadObject(path) ?? throw new KilnException($"{path}: file not found");

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        ReadModelVocab(path, root["model"], ids);
        var special = new HashSet<int>();
        if (root["added_tokens"] is JsonArray added)
        {
            foreach (var token in added.OfType<JsonObject>())
            {
                var content = token["content"]?.GetValue<string>()
                    ?? throw KilnException.InFile(path, "added_tokens", "a token has no content");
                var id = token["id"]?.GetValue<int>()
                    ?? throw KilnException.InFile(path, "added_tokens", $"'{content}' has no id");
                ids[content] = id;
                if (token["special"]?.GetValue<bool>() == true) special.Add(id);
                // The core never skips tokens itself: Tokenizer.Decode filters SpecialIds, so it can also keep them.
                token["special"] = false;
            }
        }
        var template = PostProcessorTemplate.Parse(path, root["post_processor"]);
        // Tokenizer.Encode adds the template's ids itself, after applying tokenizer_config.json.
        root["post_processor"] = null;
        var vocabSize = ids.Count == 0 ? 0 : ids.Values.Max() + 1;
        return new TokenizerJson(ids, special, vocabSize, template, root.ToJsonString());
    }

    // BPE, WordPiece and WordLevel store {"token": id}; Unigram stores [["token", score], ...] in id order.
    private static void ReadModelVocab(string path, JsonNode? model, Dictionary<string, int> ids)
    {
        switch (model?["vocab"])
        {
            case JsonObject map:
                foreach (var (token, id) in map)
                    ids[token] = id?.GetValue<int>() ?? throw KilnException.InFile(path, "model.vocab", $"'{token}' has no id");
                break;
            case JsonArray list:
                for (var i = 0; i < list.Count; i++)
                    ids[list[i]?[0]?.GetValue<string>() ?? throw KilnException.InFile(path, "model.vocab", $"entry {i} has no token")] = i;
                break;
            default:
                throw KilnException.InFile(path, "model.vocab", "missing or not an object/array");
        }
    }
}
