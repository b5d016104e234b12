using System.Diagnostics;
using Kiln.Cache;

namespace Kiln.Runtime;

/// <summary>
/// A model's tokenizer, loaded on another thread while the model's weights are bound and its session created.
/// It can start only once the graph is compiled, since the cache's tokenizer tier lives in the compile's final
/// entry: <see cref="Start"/> is <see cref="LoadedModel.Load"/>'s afterCompile. A large tokenizer.json takes
/// as long to load as a warm model (about 200 ms for 128k tokens and merges, docs/cache.md), so the two overlap.
/// </summary>
public sealed class TokenizerLoad(string model, PipelineCache? cache) : IDisposable
{
    private Task<Tokenizer?>? _loading;
    private bool _taken;

    /// <summary>The tier the tokenizer came through, once started; null without a cache entry.</summary>
    public TokenizerTier? Tier { get; private set; }

    /// <summary>How long the load itself took, on its own thread.</summary>
    public double Milliseconds { get; private set; }

    /// <summary>Starts loading; <paramref name="report"/> is the compile's cache report (null without a cache).</summary>
    public void Start(CacheReport? report)
    {
        if (_loading is not null) return;
        var tier = Tier = cache?.TokenizerTierFor(report);
        _loading = Task.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            try
            {
                return tier is null ? Tokenizer.TryLoad(model) : tier.TryLoad(model);
            }
            finally
            {
                Milliseconds = clock.Elapsed.TotalMilliseconds;
            }
        });
    }

    /// <summary>
    /// The tokenizer, null for a model without one; the load's own error is thrown here as it was thrown.
    /// Starts the load (without a tier) if nothing started it. The caller owns the result.
    /// </summary>
    public Tokenizer? Finish()
    {
        Start(null);
        _taken = true;
        return _loading!.GetAwaiter().GetResult();
    }

    /// <summary>Frees a tokenizer that was loaded but never taken (the model failed to load).</summary>
    public void Dispose()
    {
        if (_taken || _loading is null) return;
        _taken = true;
        try { _loading.GetAwaiter().GetResult()?.Dispose(); }
        catch (Exception)
        {
            // Cleanup on the model's error path: that error is the one reported, not the tokenizer's.
        }
    }
}
