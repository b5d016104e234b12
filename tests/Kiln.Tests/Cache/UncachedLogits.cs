namespace Kiln.Tests.Cache;

/// <summary>The default model's logits compiled without any cache, computed once per test class.</summary>
public sealed class UncachedLogits
{
    public float[] Value { get; } = CachedCompile.Uncached(TestPaths.DefaultModel);
}
