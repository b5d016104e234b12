using Xunit;
using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

public sealed class TokenizerTests : IDisposable
{
    private readonly Tokenizer tokenizer = Tokenizer.Load(TestPaths.DefaultModel);

    public void Dispose() => tokenizer.Dispose();

    [Fact]
    public void DefaultModelFacts()
    {
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal(new HashSet<int> { 0, 1, 2 }, tokenizer.SpecialIds);
    }

    [Fact]
    public void BosIsAddedOnceAlthoughBothTemplateAndConfigAskForIt() =>
        Assert.Equal([1, 403, 407, 261, 378], tokenizer.Encode("Once upon a time"));

    [Theory]
    [MemberData(nameof(DefaultModelCase.Indices), MemberType = typeof(DefaultModelCase))]
    public void EncodesAndDecodesLikeTransformers(int index)
    {
        var c = DefaultModelCase.Load()[index];
        Assert.Equal(c.InputIds, tokenizer.Encode(c.Prompt));
        Assert.Equal(c.FullText, tokenizer.Decode([.. c.InputIds, .. c.GreedyNewTokenIds]));
        // Decoded alone, the continuation loses its leading space to the SentencePiece decoder's Strip.
        Assert.Equal(c.GreedyNewText, tokenizer.Decode(c.GreedyNewTokenIds));
        Assert.Equal(c.Prompt, tokenizer.Decode(c.InputIds));
    }

    [Fact]
    public void EmptyTextIsJustBos() => Assert.Equal([1], tokenizer.Encode(""));

    [Theory]
    [InlineData("héllo ✓ 你好")]
    [InlineData("  two leading spaces\nand\ttabs 🙂")]
    public void ByteFallbackRoundTrips(string text)
    {
        var ids = tokenizer.Encode(text);
        Assert.Contains(ids, id => id >= 3 && id < 3 + 256); // <0xNN> byte tokens
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void SpecialTokensAreKeptOnRequest()
    {
        int[] ids = [1, 403, 407, 2];
        Assert.Equal("Once upon", tokenizer.Decode(ids));
        Assert.Equal("<s> Once upon</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void SpecialTokenTextInThePromptIsMatched() =>
        Assert.Equal([1, 1, 270, 417, 2], tokenizer.Encode("<s>hi</s>"));

    [Fact]
    public void ConfigCanTurnBosOffAndEosOn()
    {
        using var dir = CopyOfDefaultTokenizer("""{ "add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": {"content": "</s>"} }""");
        using var t = Tokenizer.Load(dir.Path);
        Assert.Equal([403, 407, 261, 378, 2], t.Encode("Once upon a time"));
    }

    [Fact]
    public void WithoutConfigTheTemplateDecides()
    {
        using var dir = CopyOfDefaultTokenizer(config: null);
        using var t = Tokenizer.Load(dir.Path);
        Assert.Equal([1, 403, 407, 261, 378], t.Encode("Once upon a time"));
        Assert.Equal(1, t.BosId);
        Assert.Null(t.EosId);
    }

    [Fact]
    public void MissingTokenizerJsonIsAUserError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<KilnException>(() => Tokenizer.Load(dir.Path));
        Assert.StartsWith(dir.File("tokenizer.json") + ": ", e.Message);
    }

    [Fact]
    public void MalformedFilesNameTheFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), "{ not json");
        var e = Assert.Throws<KilnException>(() => Tokenizer.Load(dir.Path));
        Assert.StartsWith(dir.File("tokenizer.json") + ": ", e.Message);

        using var bad = CopyOfDefaultTokenizer("""{ "bos_token": "<nope>" }""");
        e = Assert.Throws<KilnException>(() => Tokenizer.Load(bad.Path));
        Assert.Equal($"{bad.File("tokenizer_config.json")}: bos_token: '<nope>' is not in tokenizer.json", e.Message);
    }

    [Fact]
    public void DisposedTokenizerRefusesWork()
    {
        var t = Tokenizer.Load(TestPaths.DefaultModel);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Encode("x"));
    }

    private static TempDir CopyOfDefaultTokenizer(string? config)
    {
        var dir = new TempDir();
        File.Copy(Path.Combine(TestPaths.DefaultModel, "tokenizer.json"), dir.File("tokenizer.json"));
        if (config != null) File.WriteAllText(dir.File("tokenizer_config.json"), config);
        return dir;
    }
}
