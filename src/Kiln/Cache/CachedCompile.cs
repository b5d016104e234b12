using System.Diagnostics;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Distributed;
using Kiln.Graph;
using Kiln.Transforms;

namespace Kiln.Cache;

/// <summary>
/// One compile through the snapshot cache once the look-up is done: it starts <see cref="FromSnapshot"/> (a
/// restored point) or <see cref="FromExport"/> (a miss), resumes the one compile path
/// (<see cref="ModelCompiler.Resume"/>) after it, saves each later snapshot point, and reports.
/// </summary>
internal sealed class CachedCompile(Checkpoint checkpoint, PipelineConfig pipeline, Action<TransformStep, TransformInfo, ModelGraph>? observer,
    SnapshotStore store, IReadOnlyList<SnapshotKey> keys, ICommunicator ranks, List<string> warnings)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Where a compile starts, why the later points were not used, and whether the look-up quarantined an entry.</summary>
    public abstract record Start(string? Reason, bool Quarantined);

    /// <summary>A snapshot restored at <see cref="Point"/> (every rank agreeing).</summary>
    public sealed record FromSnapshot(RestoreOutcome Restored, SnapshotKey Point, string? Reason, bool Quarantined) : Start(Reason, Quarantined);

    /// <summary>No usable snapshot: the model is exported and the whole pipeline runs.</summary>
    public sealed record FromExport(string Reason, bool Quarantined) : Start(Reason, Quarantined);

    private CacheSettings Settings => store.Settings;

    /// <param name="writable">Whether snapshot points are saved (every rank deciding the same).</param>
    public CompileResult Run(Start start, bool writable)
    {
        ModelGraph graph;
        double exportMs = 0, compiledSoFar, restoreMs = 0;
        var first = 0;
        var reason = start.Reason;
        if (start is FromSnapshot snapshot)
        {
            restoreMs = _clock.Elapsed.TotalMilliseconds;
            graph = snapshot.Restored.Graph!;
            first = snapshot.Point.EntryIndex + 1;
            compiledSoFar = snapshot.Restored.Manifest!.CompileMs;
            if (Settings.VerifyOnHit && VerifyHit(snapshot.Point, graph) is { } fresh)
            {
                (graph, start, reason) = (fresh, new FromExport("", start.Quarantined), "the restored graph differed from a fresh compile (verify_on_hit)");
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
        var pipelineMs = ModelCompiler.Resume(graph, checkpoint, pipeline, first, (step, info, g) =>
        {
            compiledSoFar += info.Ms;
            observer?.Invoke(step, info, g);
        }, ranks, atPoint: (index, g) =>
        {
            var key = keys.Single(k => k.EntryIndex == index);
            // Saving is collective: every rank must decide the same, even if another process publishes meanwhile.
            if (!writable || !ranks.AllAgree(!Directory.Exists(store.EntryDirectory(key.Key)))) return;
            saveClock.Start();
            if (store.Save(key, PointInfo.Of(pipeline, index), g, compiledSoFar, ranks)) published++;
            else if (store.SaveFailed is { } failure) warnings.Add($"could not save snapshot {key.Short}: {failure}; running without it");
            else if (ranks.Size > 1 && !Directory.Exists(store.EntryDirectory(key.Key))) warnings.Add($"could not save snapshot {key.Short}: another rank failed to save");
            saveClock.Stop();
        });
        if (published > 0 && ranks.Rank == 0) store.Prune(Settings.MaxBytes);

        // The weights tier belongs to the final graph: only a last point after every transform has it.
        var finalKey = pipeline.Entries.Skip(keys[^1].EntryIndex + 1).All(e => e is SnapshotPoint || !e.Enabled) ? keys[^1].Key : null;
        var report = start is FromSnapshot hit
            ? new CacheReport("hit", PointInfo.Of(pipeline, hit.Point.EntryIndex).Describe(), reason, hit.Point.Key, restoreMs, Math.Max(0, hit.Restored.Manifest!.CompileMs - restoreMs), published,
                saveClock.Elapsed.TotalMilliseconds, warnings, finalKey)
            : new CacheReport("miss", null, reason ?? RestoreOutcome.NoEntry, keys[^1].Key, 0, 0, published, saveClock.Elapsed.TotalMilliseconds, warnings, finalKey);
        if (writable && ranks.Rank == 0)
        {
            try { CacheStats.Record(Settings.Root, report.Status == "hit", report.Reason, report.SavedMs, start.Quarantined); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { warnings.Add($"could not update cache statistics: {e.Message}"); }
        }
        return new CompileResult(graph, exportMs, restoreMs + pipelineMs, report);
    }

    // Compiles afresh up to the point, on the same path and layout, and compares graph hashes; returns the fresh graph on a mismatch.
    private ModelGraph? VerifyHit(SnapshotKey point, ModelGraph restored)
    {
        var fresh = ModelCompiler.Compile(checkpoint, pipeline, world: ranks, lastEntry: point.EntryIndex).Graph;
        if (GraphHash.Of(fresh) == GraphHash.Of(restored)) return null;
        warnings.Add($"CACHE VERIFY FAILED: entry {point.Short} restores a graph that differs from a fresh compile; " +
            "a key component is missing. The entry was removed and the fresh graph is used.");
        if (Settings.Mode != CacheMode.ReadOnly) store.Remove(point.Key);
        return fresh;
    }
}
