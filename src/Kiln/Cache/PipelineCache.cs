using System.Diagnostics;
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
/// is a miss with a reason or a warning.
/// </summary>
public sealed class PipelineCache(CacheSettings settings, ICommunicator? ranks = null)
{
    private readonly ICommunicator _ranks = ranks ?? SingleProcess.Instance;

    public CacheSettings Settings { get; } = settings;

    public CompileResult Compile(Checkpoint checkpoint, PipelineConfig pipeline, Action<PipelineEntry, TransformInfo, ModelGraph>? observer = null)
    {
        var warnings = new List<string>();
        if (Settings.Mode == CacheMode.Off) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("disabled"));
        // What a restored graph must fit, from config.json alone: a hit never traces the model. It validates
        // config.json first, so a bad one fails here exactly as it would uncached, before the key reads any of it.
        var model = ModelRecord.Of(checkpoint);
        var keys = SnapshotKeys.ForPoints(checkpoint, pipeline, Settings.Fingerprint, _ranks.Size, _ranks.Size);
        if (keys.Count == 0) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("the pipeline has no pipeline_cache point"));
        var (usable, writable) = PrepareRoot(warnings);
        // Every rank must take the same path through the collectives below.
        usable = _ranks.AllAgree(usable);
        writable = _ranks.AllAgree(usable && writable);
        if (!usable) return Uncached(checkpoint, pipeline, observer, CacheReport.Off("root not usable", warnings));

        var store = new SnapshotStore(Settings);
        if (writable && _ranks.Rank == 0) store.CleanStagingLeftovers();
        var clock = Stopwatch.StartNew();
        var (restored, point, reason, quarantined) = RestoreLatest(store, keys, model, pipeline);

        CacheLock? compileLock = null;
        if (point?.Key != keys[^1].Key && writable)
        {
            // One compile per key: wait for another process compiling it (which may already have published an
            // earlier point), then look again.
            string? lockProblem = null;
            if (_ranks.Rank == 0)
            {
                try
                {
                    compileLock = CacheLock.Acquire(Settings.Root, keys[^1].Key, Settings.EffectiveLockTimeout);
                    if (compileLock is null) lockProblem = $"another process has been compiling key {keys[^1].Short} for over {Settings.EffectiveLockTimeout.TotalSeconds:F0} s";
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    lockProblem = $"cannot take the compile lock ({e.Message})";
                }
            }
            if (!_ranks.AllAgree(_ranks.Rank != 0 || compileLock is not null))
            {
                warnings.Add($"{lockProblem ?? "rank 0 could not take the compile lock"}; compiling without the cache");
                writable = false;
            }
            else
            {
                // Another process may have compiled and published meanwhile, before or while we waited: look again.
                (restored, point, var afterWait, var quarantinedAfterWait) = RestoreLatest(store, keys, model, pipeline);
                quarantined |= quarantinedAfterWait;
                // A corrupt entry quarantined by the first look is "no entry" by now: keep the first reason.
                if (point?.Key == keys[^1].Key) reason = null;
                else if (reason == RestoreOutcome.NoEntry) reason = afterWait;
            }
        }

        try
        {
            return Run(checkpoint, pipeline, observer, store, keys, restored, point, reason, quarantined, clock, writable, warnings);
        }
        catch (Exception e) when (restored is not null && point is not null && _ranks.Size == 1)
        {
            // The restored graph passed every restore check, yet a later transform refused it: the entry is at
            // fault, not necessarily the model. It is quarantined and the model compiled from scratch, where a
            // real problem fails as it would uncached. (With several ranks the collectives leave no way back.)
            var miss = store.Corrupt(point.Key, $"resuming the pipeline from it failed: {e.Message}");
            return Run(checkpoint, pipeline, observer, store, keys, null, null, miss.MissReason, quarantined | miss.Quarantined, clock, writable, warnings);
        }
        finally
        {
            compileLock?.Dispose();
        }
    }

    private CompileResult Run(Checkpoint checkpoint, PipelineConfig pipeline, Action<PipelineEntry, TransformInfo, ModelGraph>? observer,
        SnapshotStore store, IReadOnlyList<SnapshotKey> keys, RestoreOutcome? restored, SnapshotKey? point, string? reason, bool quarantined,
        Stopwatch clock, bool writable, List<string> warnings)
    {
        ModelGraph graph;
        double exportMs = 0, compiledSoFar, restoreMs = 0;
        var start = 0;
        if (restored is not null && point is not null)
        {
            restoreMs = clock.Elapsed.TotalMilliseconds;
            graph = restored.Graph!;
            start = point.EntryIndex + 1;
            compiledSoFar = restored.Manifest!.CompileMs;
            if (Settings.VerifyOnHit && VerifyHit(checkpoint, pipeline, store, point, graph, warnings) is { } fresh)
            {
                (graph, restored, reason) = (fresh, null, "the restored graph differed from a fresh compile (--cache-verify)");
            }
        }
        else
        {
            var exportClock = Stopwatch.StartNew();
            graph = ModelCompiler.Export(checkpoint);
            compiledSoFar = exportMs = exportClock.Elapsed.TotalMilliseconds;
        }

        var published = 0;
        var saveClock = new Stopwatch();
        var index = start - 1; // the observer sees the entries in order, from start on
        var pipelineMs = Pipeline.Run(graph, pipeline.Entries, new TransformContext(checkpoint, _ranks.Size, _ranks.Rank), (entry, info, g) =>
        {
            compiledSoFar += info.Ms;
            index++;
            var key = keys.FirstOrDefault(k => k.EntryIndex == index);
            // Saving is collective: every rank must decide the same, even if another process publishes meanwhile.
            if (writable && key is not null && _ranks.AllAgree(!Directory.Exists(store.EntryDirectory(key.Key))))
            {
                saveClock.Start();
                var after = pipeline.Entries.Take(key.EntryIndex).LastOrDefault(e => !e.IsSnapshotPoint);
                if (store.Save(key, new SnapshotPoint(key.EntryIndex, after?.Name ?? "export", entry.Stage.Name()), g, compiledSoFar, _ranks)) published++;
                else if (store.SaveFailed is { } failure) warnings.Add($"could not save snapshot {key.Short}: {failure}; running without it");
                else if (_ranks.Size > 1 && !Directory.Exists(store.EntryDirectory(key.Key))) warnings.Add($"could not save snapshot {key.Short}: another rank failed to save");
                saveClock.Stop();
            }
            observer?.Invoke(entry, info, g);
        }, start);
        if (published > 0 && _ranks.Rank == 0) store.Prune(Settings.MaxBytes);

        CacheReport report;
        // The weights tier belongs to the final graph: only a last point after every transform has it.
        var finalKey = pipeline.Entries.Skip(keys[^1].EntryIndex + 1).All(e => e.IsSnapshotPoint || !e.Config.Enabled) ? keys[^1].Key : null;
        if (restored is not null && point is not null)
        {
            var savedMs = Math.Max(0, restored.Manifest!.CompileMs - restoreMs);
            report = new CacheReport("hit", Describe(pipeline, point), reason, point.Key, restoreMs, savedMs, published, saveClock.Elapsed.TotalMilliseconds, warnings, finalKey);
        }
        else
        {
            report = new CacheReport("miss", null, reason ?? RestoreOutcome.NoEntry, keys[^1].Key, 0, 0, published, saveClock.Elapsed.TotalMilliseconds, warnings, finalKey);
        }
        if (writable && _ranks.Rank == 0)
        {
            try { CacheStats.Record(Settings.Root, report.Status == "hit", report.Reason, report.SavedMs, quarantined); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { warnings.Add($"could not update cache statistics: {e.Message}"); }
        }
        return new CompileResult(graph, exportMs, restoreMs + pipelineMs, report);
    }

    /// <summary>
    /// The weights tier of the final entry of this compile (<paramref name="report"/> its report), or null when
    /// the cache was off or the pipeline's last snapshot point is not after its last transform.
    /// </summary>
    public WeightsTier? WeightsTierFor(CacheReport? report) =>
        report is { Status: "hit" or "miss", FinalKey: { } key } && Settings.Mode != CacheMode.Off ? new WeightsTier(Settings, key, _ranks) : null;

    // Tries the points from the last to the first; every rank must restore the same point.
    private (RestoreOutcome? Restored, SnapshotKey? Point, string? Reason, bool Quarantined) RestoreLatest(SnapshotStore store, IReadOnlyList<SnapshotKey> keys,
        ModelRecord model, PipelineConfig pipeline)
    {
        string? latestReason = null;
        var quarantined = false;
        foreach (var key in keys.Reverse())
        {
            var weightsBound = pipeline.Entries.Take(key.EntryIndex).Any(e => e.Transform is LoadWeightsTransform && e.Config.Enabled);
            var outcome = store.TryRestore(key, _ranks.Rank, OpRegistry.Default, model, weightsBound);
            quarantined |= outcome.Quarantined;
            latestReason ??= outcome.MissReason;
            // A hit at an earlier point keeps the reason the later points were not used.
            if (_ranks.AllAgree(outcome.Hit)) return (outcome, key, latestReason, quarantined);
            if (outcome.Hit) latestReason ??= "another rank could not restore";
        }
        return (null, null, latestReason, quarantined);
    }

    // Recompiles without the cache up to the point and compares graph hashes; returns the fresh graph on a mismatch.
    private static ModelGraph? VerifyHit(Checkpoint checkpoint, PipelineConfig pipeline, SnapshotStore store, SnapshotKey point, ModelGraph restored, List<string> warnings)
    {
        var fresh = ModelCompiler.Export(checkpoint);
        Pipeline.Run(fresh, pipeline.Entries.Take(point.EntryIndex + 1).ToList(), new TransformContext(checkpoint));
        if (GraphHash.Of(fresh) == GraphHash.Of(restored)) return null;
        warnings.Add($"CACHE VERIFY FAILED: entry {point.Short} restores a graph that differs from a fresh compile; " +
            "a key component is missing. The entry was removed and the fresh graph is used.");
        if (store.Settings.Mode != CacheMode.ReadOnly) store.Remove(point.Key);
        return fresh;
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
                warnings.Add($"not using the cache: {distrust} (pass --cache-trust-shared-root to allow it)");
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

    private static string Describe(PipelineConfig pipeline, SnapshotKey point)
    {
        var after = pipeline.Entries.Take(point.EntryIndex).LastOrDefault(e => !e.IsSnapshotPoint);
        return $"point {point.EntryIndex} (after {after?.Name ?? "export"}, stage {pipeline.Entries[point.EntryIndex].Stage.Name()})";
    }

    private static CompileResult Uncached(Checkpoint checkpoint, PipelineConfig pipeline, Action<PipelineEntry, TransformInfo, ModelGraph>? observer, CacheReport report)
    {
        var result = ModelCompiler.Compile(checkpoint, pipeline, observer);
        return result with { Cache = report };
    }
}
