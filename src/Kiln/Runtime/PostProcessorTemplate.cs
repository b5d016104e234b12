using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Runtime;

/// <summary>
/// The special-token ids a tokenizer.json post_processor puts around a single sequence.
/// We apply them ourselves (instead of letting Hugging Face's code do it) so that tokenizer_config.json's
/// add_bos_token/add_eos_token can override them the way transformers does.
/// </summary>
internal sealed record PostProcessorTemplate(int[] Prefix, int[] Suffix)
{
    public static readonly PostProcessorTemplate None = new([], []);

    public static PostProcessorTemplate Parse(string file, JsonNode? node, string field = "post_processor")
    {
        if (node is null) return None;
        if (node is not JsonObject obj) throw KilnException.InFile(file, field, "expected an object or null");
        var type = obj["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t.GetValue<string>() : null;
        return type switch
        {
            // ByteLevel only adjusts offsets; it adds no ids.
            "ByteLevel" => None,
            "TemplateProcessing" => ParseTemplate(file, obj, field),
            "BertProcessing" or "RobertaProcessing" => new([PairId(file, obj, "cls", field)], [PairId(file, obj, "sep", field)]),
            "Sequence" => ParseSequence(file, obj, field),
            _ => throw KilnException.InFile(file, field + ".type", $"unsupported post-processor '{type}'"),
        };
    }

    // Each processor wraps the output of the one before it.
    private static PostProcessorTemplate ParseSequence(string file, JsonObject obj, string field)
    {
        if (obj["processors"] is not JsonArray list) throw KilnException.InFile(file, field + ".processors", "expected an array");
        var result = None;
        for (var i = 0; i < list.Count; i++)
        {
            var inner = Parse(file, list[i], $"{field}.processors[{i}]");
            result = new([.. inner.Prefix, .. result.Prefix], [.. result.Suffix, .. inner.Suffix]);
        }
        return result;
    }

    private static PostProcessorTemplate ParseTemplate(string file, JsonObject obj, string field)
    {
        if (obj["single"] is not JsonArray single) throw KilnException.InFile(file, field + ".single", "expected an array");
        var specials = obj["special_tokens"] as JsonObject;
        List<int> prefix = [], suffix = [];
        var seenSequence = false;
        for (var i = 0; i < single.Count; i++)
        {
            if (single[i] is JsonObject p && p.ContainsKey("Sequence")) { seenSequence = true; continue; }
            if ((single[i] as JsonObject)?["SpecialToken"] is not JsonObject token)
                throw KilnException.InFile(file, $"{field}.single[{i}]", "expected a Sequence or SpecialToken item");
            var name = TokenizerJson.String(file, $"{field}.single[{i}].SpecialToken.id", token["id"]);
            if ((specials?[name] as JsonObject)?["ids"] is not JsonArray ids)
                throw KilnException.InFile(file, $"{field}.special_tokens", $"'{name}' is not defined");
            (seenSequence ? suffix : prefix).AddRange(ids.Select((id, j) => TokenizerJson.Id(file, $"{field}.special_tokens.{name}.ids[{j}]", id)));
        }
        return new([.. prefix], [.. suffix]);
    }

    // Bert/Roberta store "cls"/"sep" as ["<s>", 0].
    private static int PairId(string file, JsonObject obj, string name, string field) =>
        obj[name] is JsonArray { Count: 2 } pair
            ? TokenizerJson.Id(file, $"{field}.{name}[1]", pair[1])
            : throw KilnException.InFile(file, $"{field}.{name}", "expected [token, id]");
}
