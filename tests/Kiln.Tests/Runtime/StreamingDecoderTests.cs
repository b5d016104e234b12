using Xunit;
using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

public sealed class StreamingDecoderTests : IDisposable
{
    private readonly Tokenizer tokenizer = Tokenizer.Load(TestPaths.DefaultModel);

    public void Dispose() => tokenizer.Dispose();

    [Theory]
    [MemberData(nameof(DefaultModelCase.Indices), MemberType = typeof(DefaultModelCase))]
    public void ContinuationAfterThePromptIsTheFullTextMinusThePrompt(int index)
    {
        var c = DefaultModelCase.Load()[index];
        var streamed = Stream(new StreamingDecoder(tokenizer, c.InputIds), c.GreedyNewTokenIds);
        Assert.StartsWith(c.Prompt, c.FullText);
        Assert.Equal(c.FullText[c.Prompt.Length..], streamed);
    }

    [Theory]
    [MemberData(nameof(DefaultModelCase.Indices), MemberType = typeof(DefaultModelCase))]
    public void WithoutPromptItIsTheDecodedContinuation(int index)
    {
        var c = DefaultModelCase.Load()[index];
        Assert.Equal(c.GreedyNewText, Stream(new StreamingDecoder(tokenizer, []), c.GreedyNewTokenIds));
    }

    [Fact]
    public void PartialCharactersAreHeldBack()
    {
        var text = "héllo ✓ 你好";
        var ids = tokenizer.Encode(text);
        var decoder = new StreamingDecoder(tokenizer, ids[..1]);
        var pieces = ids[1..].Select(decoder.Push).ToList();
        Assert.Contains("", pieces);
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Equal(text, string.Concat(pieces));
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void FlushReleasesAnIncompleteCharacter()
    {
        var decoder = new StreamingDecoder(tokenizer, [1]);
        Assert.Equal("", decoder.Push(0xE4 + 3)); // <0xE4>: first byte of a 3-byte character
        Assert.Equal("\uFFFD", decoder.Flush());
    }

    private static string Stream(StreamingDecoder decoder, IEnumerable<int> ids) =>
        string.Concat(ids.Select(decoder.Push)) + decoder.Flush();
}
