using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;
using Kiln.Transforms.WeightLoad;

namespace Kiln.Cache;

/// <summary>
/// Compiles through the snapshot cache: restores the latest snapshot point with a valid entry (every
/// rank agreeing), resumes the pipeline after it, and saves each later point. One process compiles
/// a key at a time; the others wait and restore. Nothing in the cache can fail the run: every problem
/// is a miss with a reason or a warning. <paramref name="saveProgress"/> hears each step of every save, of
/// snapshots and of the weights tier.
/// </summary>
public sealed class PipelineCache(CacheSettings settings, ICommunicator? ranks = null, IProgress<SaveProgress>? saveProgress = null)
{
    private readonly ICommunicator _ranks = ranks ?? SingleProcess.Instance;

    public CacheSettings Settings { get; } = settings;

    public CompileResult Compile(Checkpoint checkpoint, PipelineConfig pipeline, Action<TransformStep, TransformInfo, ModelGraph>? observer = null)
    {
        var warnings = new List<string>();
        if (Settings.Mode == CacheMode.Off) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("disabled"));
        // What a restored graph must fit, from config.json alone: a hit never traces the model. It validates
        // config.json first, so a bad one fails here exactly as it would uncached, before the key reads any of it.
        var model = ModelRecord.Of(checkpoint, new Transforms.Sharding.TensorParallelShare(_ranks.Size, _ranks.Rank));
        var keys = SnapshotKeys.ForPoints(checkpoint, pipeline, Settings.Fingerprint, _ranks.Size, _ranks.Size);
        if (keys.Count == 0) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("the pipeline has no pipeline_cache point"));
        var (usable, writable) = PrepareRoot(warnings);
        // Every rank must take the same path through the collectives below.
        usable = _ranks.AllAgree(usable);
        writable = _ranks.AllAgree(usable && writable);
        if (!usable) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("root not usable", warnings));

        var store = new SnapshotStore(Settings, saveProgress);
        if (writable && _ranks.Rank == 0) store.CleanStagingLeftovers();
        var compile = new CachedCompile(checkpoint, pipeline, observer, store, keys, _ranks, warnings);
        var start = RestoreLatest(store, keys, model, pipeline);

        CacheLock? compileLock = null;
        var finalRestored = start is CachedCompile.FromSnapshot { Point.Key: var restoredKey } && restoredKey == keys[^1].Key;
        if (writable && !finalRestored)
        {
            // One compile per key: wait for another process compiling it (which may already have published an
            // earlier point), then look again.
            if (!LockCompile(keys[^1], warnings, out compileLock)) writable = false;
            else start = LookAgain(start, RestoreLatest(store, keys, model, pipeline), keys[^1]);
        }

        try
        {
            return compile.Run(start, writable);
        }
        catch (Exception e) when (start is CachedCompile.FromSnapshot snapshot && _ranks.Size == 1)
        {
            // The restored graph passed every restore check, yet a later transform refused it: the entry is at
            // fault, not necessarily the model. It is quarantined and the model compiled from scratch, where a
            // real problem fails as it would uncached. (With several ranks the collectives leave no way back.)
            var miss = store.Corrupt(snapshot.Point.Key, $"resuming the pipeline from it failed: {e.Message}");
            return compile.Run(new CachedCompile.FromExport(miss.MissReason!, snapshot.Quarantined | miss.Quarantined), writable);
        }
        finally
        {
            compileLock?.Dispose();
        }
    }

    // Rank 0 takes the key's compile lock (waiting for a process that holds it); false on every rank when it could not.
    private bool LockCompile(SnapshotKey final, List<string> warnings, out CacheLock? compileLock)
    {
        compileLock = null;
        string? lockProblem = null;
        if (_ranks.Rank == 0)
        {
            try
            {
                compileLock = CacheLock.Acquire(Settings.Root, final.Key, Settings.EffectiveLockTimeout);
                if (compileLock is null) lockProblem = $"another process has been compiling key {final.Short} for over {Settings.EffectiveLockTimeout.TotalSeconds:F0} s";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                lockProblem = $"cannot take the compile lock ({e.Message})";
            }
        }
        if (_ranks.AllAgree(_ranks.Rank != 0 || compileLock is not null)) return true;
        warnings.Add($"{lockProblem ?? "rank 0 could not take the compile lock"}; compiling without the cache");
        compileLock?.Dispose();
        compileLock = null;
        return false;
    }

    // After waiting for the lock: another process may have published meanwhile. The reasons of the first look
    // are kept where the second says less (a corrupt entry quarantined by the first is "no entry" by now).
    private static CachedCompile.Start LookAgain(CachedCompile.Start first, CachedCompile.Start second, SnapshotKey final)
    {
        var quarantined = first.Quarantined | second.Quarantined;
        return second switch
        {
            CachedCompile.FromSnapshot s when s.Point.Key == final.Key => s with { Reason = null, Quarantined = quarantined },
            _ when first.Reason != RestoreOutcome.NoEntry => second with { Reason = first.Reason, Quarantined = quarantined },
            _ => second with { Quarantined = quarantined },
        };
    }

    /// <summary>
    /// The weights tier of the final entry of this compile (<paramref name="report"/> its report), or null when
    /// the cache was off or the pipeline's last snapshot point is not after its last transform.
    /// </summary>
    public WeightsTier? WeightsTierFor(CacheReport? report) =>
        report is { Status: "hit" or "miss", FinalKey: { } key } && Settings.Mode != CacheMode.Off ? new WeightsTier(Settings, key, _ranks, saveProgress) : null;

    /// <summary>The tokenizer tier of the compile that <paramref name="report"/> describes: kept in its final entry; null when the cache is off.</summary>
    public TokenizerTier? TokenizerTierFor(CacheReport? report) =>
        report is { Status: "hit" or "miss", FinalKey: { } key } && Settings.Mode != CacheMode.Off ? new TokenizerTier(Settings, key) : null;

    // Tries the points from the last to the first; every rank must restore the same point.
    private CachedCompile.Start RestoreLatest(SnapshotStore store, IReadOnlyList<SnapshotKey> keys, ModelRecord model, PipelineConfig pipeline)
    {
        string? latestReason = null;
        var quarantined = false;
        foreach (var key in keys.Reverse())
        {
            var weightsBound = pipeline.Entries.Take(key.EntryIndex).Any(e => e is TransformStep { Transform: LoadWeightsTransform, Enabled: true });
            var outcome = store.TryRestore(key, _ranks.Rank, OpRegistry.Default, model, weightsBound, quarantine: false);
            latestReason ??= outcome.MissReason;
            var everyRankRestored = _ranks.AllAgree(outcome.Hit);
            // A corrupt entry is quarantined only once every rank has tried it: moved sooner, another rank would find it gone.
            if (outcome.Corrupt) quarantined |= store.Quarantine(key.Key);
            // A hit at an earlier point keeps the reason the later points were not used.
            if (everyRankRestored) return new CachedCompile.FromSnapshot(outcome, key, latestReason, quarantined);
            if (outcome.Hit) latestReason ??= "another rank could not restore";
        }
        return new CachedCompile.FromExport(latestReason ?? RestoreOutcome.NoEntry, quarantined);
    }

    // The root must exist (created private if not) and be trusted with what Kiln keeps in it (RootTrust.CheckTree;
    // links below the root are refused even for a shared root); writing also needs it writable.
    private (bool Usable, bool Writable) PrepareRoot(List<string> warnings)
    {
        try
        {
            if (!Directory.Exists(Settings.Root))
            {
                if (Settings.Mode == CacheMode.ReadOnly) return (false, false);
                PrivateFiles.CreateDirectory(Settings.Root);
            }
            if (RootTrust.LinkBelowRoot(Settings.Root) is { } link)
            {
                warnings.Add($"not using the cache: {link}");
                return (false, false);
            }
            if (!Settings.TrustSharedRoot && RootTrust.CheckTree(Settings.Root) is { } distrust)
            {
                warnings.Add($"not using the cache: {distrust} (the trust_shared_root setting allows it)");
                return (false, false);
            }
            if (Settings.Mode == CacheMode.ReadOnly) return (true, false);
            PrivateFiles.CreateDirectory(Settings.PipelineDirectory);
            var probe = Path.Combine(Settings.PipelineDirectory, $".probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
            PrivateFiles.CreateNew(probe).Dispose();
            File.Delete(probe);
            return (true, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"cache root {Settings.Root} is not writable ({e.Message}); using it read-only");
            return (Directory.Exists(Settings.PipelineDirectory), false);
        }
    }

    private CompileResult Uncached(Checkpoint checkpoint, PipelineConfig pipeline, Action<TransformStep, TransformInfo, ModelGraph>? observer, CacheReport report)
    {
        var result = ModelCompiler.Compile(checkpoint, pipeline, observer, _ranks);
        return result with { Cache = report };
    }
}
