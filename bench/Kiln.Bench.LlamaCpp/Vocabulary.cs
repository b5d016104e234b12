using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kiln.Bench.LlamaCpp;

/// <summary>
/// The GGUF vocabulary (tokenizer.ggml.tokens, scores, token_type) of a "llama" tokenizer, one entry per
/// id below the config's vocab_size. The benchmark drives both engines with ids, so the vocabulary only
/// has to be one llama.cpp accepts (unique pieces, types it knows), not one that tokenizes text well.
/// </summary>
internal static partial class Vocabulary
{
    [GeneratedRegex("^<0x[0-9A-Fa-f]{2}>$")]
    private static partial Regex BytePiece();

    public static (string[] Tokens, float[] Scores, int[] Types, string Source) Build(string? tokenizerJson, LlamaShape shape)
    {
        var (tokens, scores, types, source) = tokenizerJson is null ? Synthetic(shape) : FromTokenizerJson(tokenizerJson, shape);
        MakeUnique(tokens);
        return (tokens, scores, types, source);
    }

    /// <summary>
    /// No tokenizer.json (`kiln testmodel` writes none): &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; at 0, 1, 2 (the
    /// testmodel's bos 1 and eos 2), the 256 byte pieces &lt;0x00&gt;..&lt;0xFF&gt; when they fit (as in
    /// Llama 2's vocabulary), then pieces named after their id. The config's bos and eos ids are control tokens.
    /// </summary>
    private static (string[], float[], int[], string) Synthetic(LlamaShape shape)
    {
        var n = shape.Vocab;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        var bytes = n >= 3 + 256;
        for (var id = 0; id < n; id++)
        {
            (tokens[id], types[id]) = id switch
            {
                0 => ("<unk>", HfToGguf.TokenTypeUnknown),
                1 => ("<s>", HfToGguf.TokenTypeControl),
                2 => ("</s>", HfToGguf.TokenTypeControl),
                _ when bytes && id < 3 + 256 => ($"<0x{id - 3:X2}>", HfToGguf.TokenTypeByte),
                _ => ($"\u2581t{id.ToString(CultureInfo.InvariantCulture)}", HfToGguf.TokenTypeNormal),
            };
            scores[id] = types[id] == HfToGguf.TokenTypeNormal ? -id : 0;
        }
        foreach (var special in new[] { shape.Bos, shape.Eos })
        {
            if (special is { } s && s >= 0 && s < n) types[s] = HfToGguf.TokenTypeControl;
        }
        return (tokens, scores, types, $"synthetic ({n} entries: <unk> <s> </s>{(bytes ? ", 256 byte pieces" : "")}, then one piece per id; the checkpoint has no tokenizer.json)");
    }

    /// <summary>
    /// The pieces of tokenizer.json's model.vocab (an object piece → id for BPE and WordPiece, a list of
    /// [piece, score] for Unigram) and its added_tokens; ids without a piece become [PADn] (unused), as the
    /// converter pads. Scores: Unigram's own, otherwise -id. Types: special added tokens control, other
    /// added tokens user-defined, &lt;0xNN&gt; byte, the unk piece unknown (also when it is an added token), the rest normal.
    /// </summary>
    private static (string[], float[], int[], string) FromTokenizerJson(string path, LlamaShape shape)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var model = root["model"]?.AsObject() ?? throw new InvalidDataException($"{path}: no model");
        var n = shape.Vocab;
        var tokens = new string?[n];
        var scores = new float[n];
        var types = new int[n];
        switch (model["vocab"])
        {
            case JsonObject map:
                foreach (var (piece, id) in map)
                {
                    var i = id!.GetValue<int>();
                    if (i >= 0 && i < n) (tokens[i], scores[i]) = (piece, -i);
                }
                break;
            case JsonArray list:
                for (var i = 0; i < list.Count && i < n; i++)
                {
                    var entry = list[i]!.AsArray();
                    (tokens[i], scores[i]) = (entry[0]!.GetValue<string>(), (float)entry[1]!.GetValue<double>());
                }
                break;
            default:
                throw new InvalidDataException($"{path}: model.vocab is neither an object nor a list");
        }
        var unk = model["unk_token"] is JsonValue u && u.TryGetValue<string>(out var unkPiece) ? unkPiece : null;
        for (var i = 0; i < n; i++)
        {
            types[i] = tokens[i] is null ? HfToGguf.TokenTypeUnused
                : tokens[i] == unk ? HfToGguf.TokenTypeUnknown
                : BytePiece().IsMatch(tokens[i]!) ? HfToGguf.TokenTypeByte
                : HfToGguf.TokenTypeNormal;
        }
        foreach (var added in root["added_tokens"]?.AsArray() ?? [])
        {
            var id = added!["id"]!.GetValue<int>();
            if (id < 0 || id >= n) continue;
            tokens[id] = added["content"]!.GetValue<string>();
            types[id] = tokens[id] == unk ? HfToGguf.TokenTypeUnknown
                : added["special"]?.GetValue<bool>() == true ? HfToGguf.TokenTypeControl
                : HfToGguf.TokenTypeUserDefined;
        }
        var padded = 0;
        for (var i = 0; i < n; i++)
        {
            if (tokens[i] is not null) continue;
            tokens[i] = $"[PAD{i}]";
            padded++;
        }
        return (tokens.Select(t => t!).ToArray(), scores, types, $"tokenizer.json ({model["type"]?.GetValue<string>() ?? "?"} vocabulary, {padded} ids padded)");
    }

    // llama.cpp maps piece → id, so a piece that appears twice would hide an id.
    private static void MakeUnique(string[] tokens)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tokens.Length; i++)
        {
            if (seen.Add(tokens[i])) continue;
            var suffix = 1;
            while (!seen.Add($"{tokens[i]}[{i}.{suffix}]")) suffix++;
            tokens[i] = $"{tokens[i]}[{i}.{suffix}]";
        }
    }
}
