using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using Kiln.Checkpoints.Gguf;
using Kiln.Runtime;
using Kiln.Tests.Checkpoints.Gguf;

namespace Kiln.Tests.Runtime;

/// <summary>
/// Tokenizers built from GGUF metadata against the Hugging Face tokenizer.json of the same vocabulary: the
/// default model's SentencePiece tokenizer (models/stories260K-gguf against models/stories260K) and a
/// GPT-2 style byte-level one, on the reference prompts and on random text.
/// </summary>
public sealed class GgufTokenizerTests : IDisposable
{
    private static readonly int FuzzCases = Fuzzing.FuzzOutcome.Scaled(3000);
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void The_default_models_gguf_has_the_folders_tokenizer()
    {
        using var gguf = Tokenizer.Load(GgufModels.Stories260K);
        using var folder = Tokenizer.Load(TestPaths.DefaultModel);
        Assert.Equal((folder.VocabSize, folder.BosId, folder.EosId), (gguf.VocabSize, gguf.BosId, gguf.EosId));
        Assert.Equal(folder.SpecialIds, gguf.SpecialIds);
        foreach (var c in DefaultModelCase.Load())
        {
            Assert.Equal(c.InputIds, gguf.Encode(c.Prompt));
            Assert.Equal(c.FullText, gguf.Decode([.. c.InputIds, .. c.GreedyNewTokenIds]));
        }
    }

    [Fact]
    public void Encodes_random_text_like_the_folders_tokenizer_json()
    {
        using var gguf = Tokenizer.Load(Path.GetDirectoryName(GgufModels.Stories260K)!);
        using var folder = Tokenizer.Load(TestPaths.DefaultModel);
        AgreeOnRandomText(gguf, folder, ["<s>", "</s>", "<unk>", "<0x41>", "▁the", "Lily"]);
    }

    [Fact]
    public void Encodes_random_text_like_a_byte_level_tokenizer_json()
    {
        var gguf = dir.File("gpt2.gguf");
        GgufWriter.Write(gguf, [.. ByteLevel.Metadata()], []);
        var folder = dir.File("folder");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), ByteLevel.TokenizerJson());
        using var fromGguf = Tokenizer.Load(gguf);
        using var fromJson = Tokenizer.Load(folder);
        Assert.Equal(new HashSet<int> { ByteLevel.EndOfText }, fromGguf.SpecialIds);
        Assert.Null(fromGguf.BosId);
        Assert.Equal([83, 257, ByteLevel.EndOfText, 258], fromGguf.Encode("the<|endoftext|> the"));
        AgreeOnRandomText(fromGguf, fromJson, ["<|endoftext|>", " the", "the", " a", "is"]);
    }

    [Fact]
    public void Bos_and_eos_follow_the_add_flags()
    {
        var path = WithTokenizer(m => m
            .Append(new("tokenizer.ggml.add_bos_token", new GgufValue(GgufValueType.Bool, false)))
            .Append(new("tokenizer.ggml.add_eos_token", new GgufValue(GgufValueType.Bool, true))));
        using var t = Tokenizer.Load(path);
        Assert.Equal([403, 407, 261, 378, 2], t.Encode("Once upon a time"));
    }

    [Fact]
    public void A_file_without_tokenizer_metadata_has_no_tokenizer()
    {
        var path = dir.File("bare.gguf");
        GgufWriter.Write(path, [new("general.architecture", new GgufValue(GgufValueType.String, "llama"))], []);
        Assert.Null(Tokenizer.TryLoad(path));
        Assert.Equal($"{path}: metadata 'tokenizer.ggml.model': absent; text prompts need the model's tokenizer",
            Assert.Throws<KilnException>(() => Tokenizer.Load(path)).Message);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "model", "metadata 'tokenizer.ggml.model': tokenizer 'bert' is not supported (supported: llama, gpt2)" },
        { "duplicate", "metadata 'tokenizer.ggml.tokens': token 4 '<s>' is also token 1" },
        { "bos", "metadata 'tokenizer.ggml.bos_token_id': token id 600 is outside the vocabulary (0..511)" },
        { "scores", "metadata 'tokenizer.ggml.scores': 3 values for 512 tokens" },
        { "types", "metadata 'tokenizer.ggml.token_type': expected an array of integers, found arr[str]" },
        { "pre", "metadata 'tokenizer.ggml.pre': pre-tokenizer 'qwen2' is not supported" },
        { "merges", "metadata 'tokenizer.ggml.merges': is required for a gpt2 tokenizer" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Malformed_tokenizer_metadata_is_an_error_naming_the_key(string what, string expected)
    {
        GgufValue Str(string s) => new(GgufValueType.String, s);
        var path = WithTokenizer(m => what switch
        {
            "model" => Replace(m, "tokenizer.ggml.model", Str("bert")),
            "duplicate" => Replace(m, "tokenizer.ggml.tokens", new GgufValue(GgufValueType.Array,
                ((string[])m.Single(e => e.Key == "tokenizer.ggml.tokens").Value.Value).Select((t, i) => i == 4 ? "<s>" : t).ToArray(), GgufValueType.String)),
            "bos" => Replace(m, "tokenizer.ggml.bos_token_id", new GgufValue(GgufValueType.UInt32, 600u)),
            "scores" => Replace(m, "tokenizer.ggml.scores", new GgufValue(GgufValueType.Array, new[] { 1f, 2f, 3f }, GgufValueType.Float32)),
            "types" => Replace(m, "tokenizer.ggml.token_type", new GgufValue(GgufValueType.Array, new[] { "x" }, GgufValueType.String)),
            "pre" => Replace(m, "tokenizer.ggml.model", Str("gpt2")).Append(new("tokenizer.ggml.pre", Str("qwen2"))),
            _ => Replace(m, "tokenizer.ggml.model", Str("gpt2")),
        });
        var e = Assert.Throws<KilnException>(() => Tokenizer.Load(path));
        Assert.Equal($"{path}: {expected}", e.Message[..Math.Min(e.Message.Length, path.Length + 2 + expected.Length)]);
    }

    // The default model's GGUF metadata, edited, in a file of its own (no tensors: the tokenizer reads only metadata).
    private string WithTokenizer(Func<IEnumerable<KeyValuePair<string, GgufValue>>, IEnumerable<KeyValuePair<string, GgufValue>>> edit)
    {
        var path = dir.File($"{Guid.NewGuid():N}.gguf");
        GgufWriter.Write(path, [.. edit(GgufModels.Read(GgufModels.Stories260K).Metadata)], []);
        return path;
    }

    private static IEnumerable<KeyValuePair<string, GgufValue>> Replace(IEnumerable<KeyValuePair<string, GgufValue>> metadata, string key, GgufValue value) =>
        metadata.Select(e => e.Key == key ? new KeyValuePair<string, GgufValue>(key, value) : e);

    // Random text from pieces a tokenizer treats differently: ASCII words and digits, runs of whitespace,
    // punctuation, accented and CJK letters, emoji (surrogate pairs), and the given tokens' own text.
    private static void AgreeOnRandomText(Tokenizer actual, Tokenizer expected, string[] tokens)
    {
        var piece = Gen.OneOf(
            Gen.String[Gen.Char['a', 'z'], 1, 8],
            Gen.String[Gen.Char['A', 'Z'], 1, 3],
            Gen.String[Gen.Char['0', '9'], 1, 6],
            Gen.String[Gen.OneOf(' ', ' ', '\t', '\n', '\r'), 1, 5],
            Gen.String[Gen.OneOf('.', ',', '!', '?', '\'', '"', '-', '(', ')', '’', '“', '…'), 1, 3],
            Gen.String[Gen.OneOf('é', 'ñ', 'ü', 'ß', 'ø', 'Ω', 'ж', '你', '好', '字', 'ー', 'ا'), 1, 4],
            Gen.OneOf("🙂", "🚀", "👍🏽", "🇫🇷", "\u200d", "\ufeff", "\u00a0"),
            Gen.OneOf(tokens));
        Gen.Select(piece.Array[0, 12], parts => string.Concat(parts)).Sample(text =>
        {
            var ids = expected.Encode(text);
            Assert.True(ids.SequenceEqual(actual.Encode(text)), $"encodings differ for {Escape(text)}");
            Assert.Equal(expected.Decode(ids), actual.Decode(ids));
            Assert.Equal(expected.Decode(ids, skipSpecialTokens: false), actual.Decode(ids, skipSpecialTokens: false));
        }, iter: FuzzCases);
    }

    private static string Escape(string text) => string.Concat(text.Select(c => c < 0x20 || c > 0x7e ? $"\\u{(int)c:x4}" : c.ToString()));

    /// <summary>A GPT-2 style byte-level vocabulary: the 256 byte symbols, five merges, and &lt;|endoftext|&gt;.</summary>
    private static class ByteLevel
    {
        public const int EndOfText = 261;
        private static readonly string[] Merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i s"];

        private static string[] Tokens() => [.. Symbols(), .. Merges.Select(m => m.Replace(" ", "")), "<|endoftext|>"];

        public static IEnumerable<KeyValuePair<string, GgufValue>> Metadata()
        {
            var tokens = Tokens();
            yield return new("tokenizer.ggml.model", new GgufValue(GgufValueType.String, "gpt2"));
            yield return new("tokenizer.ggml.pre", new GgufValue(GgufValueType.String, "gpt-2"));
            yield return new("tokenizer.ggml.tokens", new GgufValue(GgufValueType.Array, tokens, GgufValueType.String));
            yield return new("tokenizer.ggml.token_type", new GgufValue(GgufValueType.Array, tokens.Select((_, i) => i == EndOfText ? 3 : 1).ToArray(), GgufValueType.Int32));
            yield return new("tokenizer.ggml.merges", new GgufValue(GgufValueType.Array, Merges, GgufValueType.String));
            yield return new("tokenizer.ggml.eos_token_id", new GgufValue(GgufValueType.UInt32, (uint)EndOfText));
        }

        // As transformers writes GPT-2's tokenizer.json.
        public static string TokenizerJson()
        {
            var vocab = new JsonObject();
            foreach (var token in Tokens()) vocab[token] = vocab.Count;
            var byteLevel = """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}""";
            return new JsonObject
            {
                ["version"] = "1.0",
                ["added_tokens"] = JsonNode.Parse($$"""[{"id": {{EndOfText}}, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}]"""),
                ["normalizer"] = null,
                ["pre_tokenizer"] = JsonNode.Parse(byteLevel),
                ["post_processor"] = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}"""),
                ["decoder"] = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"""),
                ["model"] = new JsonObject
                {
                    ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                    ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray([.. Merges.Select(m => (JsonNode)m)]),
                },
            }.ToJsonString();
        }

        // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
        private static IEnumerable<string> Symbols()
        {
            var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToList();
            var others = Enumerable.Range(0, 256).Except(printable).Select((_, i) => 256 + i);
            return printable.Concat(others).Select(c => ((char)c).ToString());
        }
    }
}
