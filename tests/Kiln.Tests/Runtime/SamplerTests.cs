using Xunit;
using Kiln.Runtime;

namespace Kiln.Tests.Runtime;

public sealed class SamplerTests
{
    private static readonly float[] Logits = [0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f];

    [Fact]
    public void GreedyTakesTheLowestIdOfTheLargest() =>
        Assert.Equal(1, new Sampler(new SamplingOptions()).Next(Logits));

    [Fact]
    public void SameSeedSameDrawsOtherSeedOtherDraws()
    {
        var a = Draws(new SamplingOptions(Temperature: 1, Seed: 42), 50);
        var b = Draws(new SamplingOptions(Temperature: 1, Seed: 42), 50);
        var c = Draws(new SamplingOptions(Temperature: 1, Seed: 43), 50);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a.Distinct().Count() > 1);
    }

    [Fact]
    public void TopKOneIsGreedy() =>
        Assert.All(Draws(new SamplingOptions(Temperature: 2, TopK: 1, Seed: 1), 50), id => Assert.Equal(1, id));

    [Fact]
    public void TinyTopPIsGreedy() =>
        Assert.All(Draws(new SamplingOptions(Temperature: 2, TopP: 1e-6f, Seed: 1), 50), id => Assert.Equal(1, id));

    [Fact]
    public void TopKKeepsOnlyTheLargest() =>
        Assert.All(Draws(new SamplingOptions(Temperature: 5, TopK: 3, Seed: 7), 500), id => Assert.Contains(id, new[] { 1, 3, 4 }));

    [Fact]
    public void DrawsFollowTheSoftmax()
    {
        var sampler = new Sampler(new SamplingOptions(Temperature: 1, Seed: 123));
        float[] logits = [MathF.Log(0.25f), MathF.Log(0.75f)];
        var ones = Enumerable.Range(0, 4000).Count(_ => sampler.Next(logits) == 1);
        // Standard deviation of the share is about 0.007.
        Assert.InRange(ones / 4000.0, 0.72, 0.78);
    }

    [Theory]
    [InlineData(-0.1f, 0, 1f, "temperature")]
    [InlineData(float.NaN, 0, 1f, "temperature")]
    [InlineData(1f, -1, 1f, "top_k")]
    [InlineData(1f, 0, 0f, "top_p")]
    [InlineData(1f, 0, 1.5f, "top_p")]
    public void InvalidOptionsNameTheOption(float temperature, int topK, float topP, string option)
    {
        var e = Assert.Throws<KilnException>(() => new Sampler(new SamplingOptions(temperature, topK, topP)));
        Assert.StartsWith(option + ": ", e.Message);
    }

    private static int[] Draws(SamplingOptions options, int count)
    {
        var sampler = new Sampler(options);
        return [.. Enumerable.Range(0, count).Select(_ => sampler.Next(Logits))];
    }
}
