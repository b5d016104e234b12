using Xunit;
using System.Text.Json.Nodes;
using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

/// <summary>A GPT-2 style byte-level BPE tokenizer.json, built here with a handful of merges.</summary>
public sealed class ByteLevelTokenizerTests
{
    // Ids 0..255 are GPT-2's byte symbols in bytes_to_unicode order: '!'..'~' (0..93), '¡'..'¬', '®'..'ÿ',
    // then the remaining bytes 0x00.. as U+0100.. (so ' ' = 'Ġ' = 220, '\n' = 'Ċ' = 198).
    private const int The = 258, Is = 260, EndOfText = 261, Space = 220;
    private static readonly string[] Merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i s"];

    [Fact]
    public void EncodesWithMergesAndByteSymbols()
    {
        using var dir = Write(postProcessor: null, config: null);
        using var t = Tokenizer.Load(dir.Path);
        var text = "Hello the world is the best";
        int[] expected = [39, 68, 75, 75, 78, The, Space, 86, 78, 81, 75, 67, Space, Is, The, Space, 65, 68, 82, 83];
        Assert.Equal(expected, t.Encode(text));
        Assert.Equal(text, t.Decode(expected));
        Assert.Equal(262, t.VocabSize);
        Assert.Null(t.BosId);
    }

    [Theory]
    [InlineData("héllo ✓ 你好  x\n")]
    [InlineData(" leading space, 'quotes' & émoji 🙂\r\n\tend")]
    public void AnyTextRoundTrips(string text)
    {
        using var dir = Write(postProcessor: null, config: null);
        using var t = Tokenizer.Load(dir.Path);
        Assert.Equal(text, t.Decode(t.Encode(text)));
    }

    [Fact]
    public void SpecialTokenInTextIsOneId()
    {
        using var dir = Write(postProcessor: null, config: null);
        using var t = Tokenizer.Load(dir.Path);
        var ids = t.Encode("the<|endoftext|> the");
        Assert.Equal([83, 257, EndOfText, The], ids);
        Assert.Equal("the the", t.Decode(ids));
        Assert.Equal("the<|endoftext|> the", t.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(new HashSet<int> { EndOfText }, t.SpecialIds);
    }

    [Fact]
    public void Llama3StyleTemplateAddsBosOnce()
    {
        // Llama 3 layout: Sequence[ByteLevel, TemplateProcessing("<|endoftext|> $A")], no add_bos_token.
        var template = new JsonObject
        {
            ["type"] = "Sequence",
            ["processors"] = new JsonArray(
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
                new JsonObject
                {
                    ["type"] = "TemplateProcessing",
                    ["single"] = JsonNode.Parse("""[{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]"""),
                    ["pair"] = new JsonArray(),
                    ["special_tokens"] = JsonNode.Parse("""{"<|endoftext|>": {"id": "<|endoftext|>", "ids": [261], "tokens": ["<|endoftext|>"]}}"""),
                }),
        };
        using (var dir = Write(template, """{ "bos_token": "<|endoftext|>" }"""))
        using (var t = Tokenizer.Load(dir.Path))
        {
            Assert.Equal([EndOfText, 83, 257], t.Encode("the"));
            Assert.Equal(EndOfText, t.BosId);
        }
        using (var dir = Write(template, """{ "add_bos_token": true, "bos_token": {"__type": "AddedToken", "content": "<|endoftext|>"} }"""))
        using (var t = Tokenizer.Load(dir.Path))
        {
            Assert.Equal([EndOfText, 83, 257], t.Encode("the"));
        }
    }

    private static TempDir Write(JsonNode? postProcessor, string? config)
    {
        var vocab = new JsonObject();
        foreach (var symbol in ByteSymbols()) vocab[symbol] = vocab.Count;
        foreach (var merge in Merges) vocab[merge.Replace(" ", "")] = vocab.Count;
        vocab["<|endoftext|>"] = EndOfText;
        var byteLevel = """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}""";
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = JsonNode.Parse("""[{"id": 261, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}]"""),
            ["normalizer"] = null,
            ["pre_tokenizer"] = JsonNode.Parse(byteLevel),
            ["post_processor"] = postProcessor?.DeepClone(),
            ["decoder"] = JsonNode.Parse(byteLevel),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. Merges.Select(m => (JsonNode)m)]),
            },
        };
        var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        if (config != null) File.WriteAllText(dir.File("tokenizer_config.json"), config);
        return dir;
    }

    // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
    private static IEnumerable<string> ByteSymbols()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToList();
        var others = Enumerable.Range(0, 256).Except(printable).Select((_, i) => 256 + i);
        return printable.Concat(others).Select(c => ((char)c).ToString());
    }
}
