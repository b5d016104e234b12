using System.Text.Json.Nodes;
using Kiln.Checkpoints.Gguf;
using Kiln.Models;

namespace Kiln.Runtime;

/// <summary>
/// The Hugging Face tokenizer.json that a GGUF file's tokenizer metadata stands for, built the way
/// transformers converts the same tokenizer, so that Hugging Face's own tokenizers library encodes
/// exactly as with the model's tokenizer.json:
/// <list type="bullet">
/// <item>tokenizer.ggml.model "llama" (SentencePiece BPE): BPE with byte fallback over the tokens, with the merges
/// of tokenizer.ggml.merges or, as transformers' SentencePiece converter makes them, every split of a token into two
/// tokens ordered by the token's score (then the longer left part, then the longer right part); the text gets a
/// leading "▁" (tokenizer.ggml.add_space_prefix, default true) and "▁" for spaces.</item>
/// <item>"gpt2" (byte-level BPE): the tokens and tokenizer.ggml.merges, with GPT-2's byte-level pre-tokenizer, or
/// Llama 3's (tokenizer.ggml.pre "llama-bpe", "llama3" or "llama-v3", which also takes whole words in the vocabulary
/// before merging).</item>
/// </list>
/// Tokens of type CONTROL and UNKNOWN (tokenizer.ggml.token_type) are special added tokens, USER_DEFINED
/// ones plain added tokens. BOS and EOS (tokenizer.ggml.bos_token_id, eos_token_id) are added as
/// tokenizer.ggml.add_bos_token and add_eos_token say, with llama.cpp's defaults (BOS for "llama" and
/// for Llama 3's pre-tokenizer, no EOS).
/// </summary>
internal sealed record GgufTokenizerJson(string CoreJson, int[] Prefix, int[] Suffix, int VocabSize, int? BosId, int? EosId, IReadOnlySet<int> SpecialIds)
{
    public const string ModelKey = "tokenizer.ggml.model";
    private const string TokensKey = "tokenizer.ggml.tokens", ScoresKey = "tokenizer.ggml.scores", TypesKey = "tokenizer.ggml.token_type";
    private const string MergesKey = "tokenizer.ggml.merges", PreKey = "tokenizer.ggml.pre", SpacePrefixKey = "tokenizer.ggml.add_space_prefix";

    // llama.cpp's token types (llama_token_type).
    private const int Unknown = 2, Control = 3, UserDefined = 4;

    private static readonly string[] Llama3PreTokenizers = ["llama-bpe", "llama3", "llama-v3"];

    // The pattern of Llama 3's tokenizer.json (a Split pre-tokenizer before the byte-level one).
    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The tokenizer of <paramref name="metadata"/>, or null when the file has none (no tokenizer.ggml.model, or "no_vocab").</summary>
    public static GgufTokenizerJson? Read(GgufMetadata metadata)
    {
        var model = metadata.String(ModelKey);
        if (model is null or "no_vocab" or "none") return null;
        if (model is not ("llama" or "gpt2"))
            throw metadata.Error(ModelKey, $"tokenizer '{GgufText.Show(model)}' is not supported (supported: llama, gpt2)");
        var spm = model == "llama";

        var tokens = metadata.Strings(TokensKey) ?? throw metadata.Error(TokensKey, "is required");
        if (tokens.Length == 0 || tokens.Length > ConfigLimits.MaxVocab)
            throw metadata.Error(TokensKey, $"{tokens.Length} tokens (expected 1 to {ConfigLimits.MaxVocab})");
        var ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (var i = 0; i < tokens.Length; i++)
        {
            if (tokens[i].Length == 0) throw metadata.Error(TokensKey, $"token {i} is empty");
            if (!ids.TryAdd(tokens[i], i)) throw metadata.Error(TokensKey, $"token {i} '{GgufText.Show(tokens[i])}' is also token {ids[tokens[i]]}");
        }
        var types = PerToken(metadata, TypesKey, metadata.Integers(TypesKey), tokens.Length);
        var pre = metadata.String(PreKey);
        var llama3 = !spm && pre is not null && Llama3PreTokenizers.Contains(pre);
        if (!spm && pre is not (null or "default" or "gpt-2") && !llama3)
            throw metadata.Error(PreKey, $"pre-tokenizer '{GgufText.Show(pre)}' is not supported (supported: default, gpt-2, {string.Join(", ", Llama3PreTokenizers)})");
        if (spm && metadata.Bool("tokenizer.ggml.remove_extra_whitespaces") == true)
            throw metadata.Error("tokenizer.ggml.remove_extra_whitespaces", "true is not supported");

        int? Special(string name, int? fallback)
        {
            var key = $"tokenizer.ggml.{name}_token_id";
            var id = metadata.Has(key) ? GgufConfig.TokenId(metadata, key) : fallback;
            if (id is { } value && (value < 0 || value >= tokens.Length))
                throw metadata.Error(key, $"token id {value} is outside the vocabulary (0..{tokens.Length - 1})");
            return (int?)id;
        }
        var (bos, eos, unk) = (Special("bos", spm ? 1 : null), Special("eos", spm ? 2 : null), Special("unknown", spm ? 0 : null));
        var prefix = Added(metadata, "tokenizer.ggml.add_bos_token", spm || llama3, bos);
        var suffix = Added(metadata, "tokenizer.ggml.add_eos_token", false, eos);

        var special = new SortedSet<int>();
        var added = new JsonArray();
        for (var i = 0; i < tokens.Length; i++)
        {
            var isSpecial = types is null ? i == unk || i == bos || i == eos : types[i] is Unknown or Control;
            if (!isSpecial && types?[i] != UserDefined) continue;
            if (isSpecial) special.Add(i);
            // As for tokenizer.json, the library never skips tokens itself: Tokenizer.Decode leaves SpecialIds out.
            added.Add((JsonNode)new JsonObject
            {
                ["id"] = i, ["content"] = tokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = false,
            });
        }

        var merges = metadata.Strings(MergesKey) is { } listed ? Pairs(metadata, listed)
            : spm ? SentencePieceMerges.From(tokens, ids, PerToken(metadata, ScoresKey, metadata.Numbers(ScoresKey), tokens.Length))
            : throw metadata.Error(MergesKey, "is required for a gpt2 tokenizer");
        var vocab = new JsonObject();
        for (var i = 0; i < tokens.Length; i++) vocab[tokens[i]] = i;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = spm ? SentencePieceNormalizer(metadata.Bool(SpacePrefixKey) ?? true) : null,
            ["pre_tokenizer"] = spm ? null : llama3 ? Llama3PreTokenizer() : ByteLevel(useRegex: true),
            ["post_processor"] = null,
            ["decoder"] = spm ? SentencePieceDecoder(metadata.Bool(SpacePrefixKey) ?? true) : ByteLevel(useRegex: true, addPrefixSpace: true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = unk is { } u ? tokens[u] : null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = spm,
                ["byte_fallback"] = spm,
                ["ignore_merges"] = llama3,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)new JsonArray(m.Left, m.Right))]),
            },
        };
        return new GgufTokenizerJson(json.ToJsonString(), prefix, suffix, tokens.Length, bos, eos, special);
    }

    // An array with a value per token (it may have more, as llama.cpp allows), or null when absent.
    private static T[]? PerToken<T>(GgufMetadata metadata, string key, T[]? values, int tokens) =>
        values is null || values.Length >= tokens ? values : throw metadata.Error(key, $"{values.Length} values for {tokens} tokens");

    private static int[] Added(GgufMetadata metadata, string key, bool fallback, int? id)
    {
        if (!(metadata.Bool(key) ?? fallback)) return [];
        return id is { } value ? [value] : throw metadata.Error(key, "is true, but the file names no such token");
    }

    // "a b" strings, split at the space llama.cpp splits them at (a token never starts with one).
    private static List<(string Left, string Right)> Pairs(GgufMetadata metadata, string[] merges)
    {
        var pairs = new List<(string, string)>(merges.Length);
        for (var i = 0; i < merges.Length; i++)
        {
            var space = merges[i].IndexOf(' ', 1);
            if (space < 0) throw metadata.Error(MergesKey, $"merge {i} '{GgufText.Show(merges[i])}' is not two tokens separated by a space");
            pairs.Add((merges[i][..space], merges[i][(space + 1)..]));
        }
        return pairs;
    }

    private static JsonObject SentencePieceNormalizer(bool spacePrefix)
    {
        var replace = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" };
        if (!spacePrefix) return replace;
        return new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" }, replace) };
    }

    private static JsonObject SentencePieceDecoder(bool spacePrefix)
    {
        var decoders = new JsonArray(
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
            new JsonObject { ["type"] = "ByteFallback" },
            new JsonObject { ["type"] = "Fuse" });
        if (spacePrefix) decoders.Add((JsonNode)new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });
        return new JsonObject { ["type"] = "Sequence", ["decoders"] = decoders };
    }

    private static JsonObject ByteLevel(bool useRegex, bool addPrefixSpace = false) => new()
    {
        ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = useRegex,
    };

    private static JsonObject Llama3PreTokenizer() => new()
    {
        ["type"] = "Sequence",
        ["pretokenizers"] = new JsonArray(
            new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Llama3Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
            ByteLevel(useRegex: false)),
    };
}
