using System.Diagnostics;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Bench.Cache;

/// <summary>One transform's median time in the uncached runs, and the graph's node count after it.</summary>
internal sealed record TransformTime(string Name, double MedianMs, int NodesAfter);

/// <summary>An entry's files on disk.</summary>
internal sealed record EntrySize(string Point, int Nodes, long ManifestBytes, long GraphJsonBytes, long BuffersBytes, long TotalBytes);

/// <summary>
/// The in-process timings for one sparse checkpoint: each is the wall time of producing the compiled
/// graph from an open checkpoint (export included), median of the repeats, after one untimed run of the
/// same kind. Cold: <see cref="ModelCompiler.Compile"/> with the default pipeline, no cache. Cold with
/// saving: <see cref="PipelineCache"/> read-write on a new empty root each time (a miss that saves both
/// points). Warm at the final point: a read-write hit. Warm at point 1: the final entry removed and the
/// root read-only, so each run restores point 1, runs the transforms after it and saves nothing.
/// </summary>
internal sealed record ModelCacheResult(
    string Model, int Layers, int MaxPositions, long CheckpointBytes, long CheckpointDiskBytes, int ExportedNodes,
    Timing Cold, double ColdExportMs, double ColdPipelineMs, Timing ColdWithSave, double SaveMs, double SaveOverheadPercent, double MedianDifferencePercent,
    Timing WarmPointOne, double WarmPointOneRestoreMs, Timing WarmFinal, double WarmFinalRestoreMs,
    double SpeedupPointOne, double SpeedupFinal, IReadOnlyList<EntrySize> Entries, IReadOnlyList<TransformTime> ColdTransforms,
    RestoreBreakdown Restore);

internal static class PipelineBenchmark
{
    public static ModelCacheResult Run(string model, TestModelOptions options, string work, int repeats)
    {
        var directory = Path.Combine(work, $"llama3-{model.ToLowerInvariant()}-{options.MaxPositions}");
        RandomCheckpointWriter.Write(options, directory, sparse: true);
        using var checkpoint = Checkpoint.Open(directory);
        var weights = Path.Combine(directory, Checkpoint.SingleWeightsFileName);
        var pipeline = PipelineConfig.Load();
        var keys = SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers, 1, 1);
        if (keys.Count != 2) throw new InvalidOperationException($"the default pipeline has {keys.Count} snapshot points, this benchmark expects 2");
        var roots = 0;
        string NewRoot() => Path.Combine(work, $"cache-{model}-{roots++}");
        PipelineCache Cache(string root, CacheMode mode = CacheMode.ReadWrite) => new(new CacheSettings(root, mode));

        // One untimed run of each kind first (JIT, file cache); the kinds then alternate in every repeat, so
        // load that drifts over the run (other processes on the machine) reaches all of them alike.
        Console.Error.WriteLine($"{model}: warm-up");
        ModelCompiler.Compile(checkpoint, pipeline);
        var finalRoot = NewRoot();
        Expect(Cache(finalRoot).Compile(checkpoint, pipeline), "miss", null);
        Expect(Cache(finalRoot).Compile(checkpoint, pipeline), "hit", keys[1]);
        var pointOneRoot = NewRoot();
        Expect(Cache(pointOneRoot).Compile(checkpoint, pipeline), "miss", null);
        var entries = Sizes(new SnapshotStore(new CacheSettings(pointOneRoot)), pipeline, keys, ModelCompiler.Compile(checkpoint, pipeline).Graph.History);
        new SnapshotStore(new CacheSettings(pointOneRoot)).Remove(keys[1].Key);
        Expect(Cache(pointOneRoot, CacheMode.ReadOnly).Compile(checkpoint, pipeline), "hit", keys[0]);

        var (coldMs, saveMs, finalMs, pointOneMs) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
        var (coldHistories, coldExportMs, coldPipelineMs) = (new List<List<TransformInfo>>(), new List<double>(), new List<double>());
        var (saveReports, finalReports, pointOneReports) = (new List<CacheReport>(), new List<CacheReport>(), new List<CacheReport>());
        for (var r = 0; r < repeats; r++)
        {
            Console.Error.WriteLine($"{model}: repeat {r + 1} of {repeats}");
            var coldResult = Sample(coldMs, () => ModelCompiler.Compile(checkpoint, pipeline));
            coldHistories.Add(coldResult.Graph.History);
            coldExportMs.Add(coldResult.ExportMs);
            coldPipelineMs.Add(coldResult.PipelineMs);
            var saveRoot = NewRoot();
            saveReports.Add(Sample(saveMs, () => Expect(Cache(saveRoot).Compile(checkpoint, pipeline), "miss", null)).Cache!);
            // Deleted at once, so the next saves write into page cache the machine has used before: in a
            // microVM (Firecracker) a never-touched guest page costs a host fault, and 128 MB of new files
            // per repeat would time that rather than the save.
            Directory.Delete(saveRoot, recursive: true);
            finalReports.Add(Sample(finalMs, () => Expect(Cache(finalRoot).Compile(checkpoint, pipeline), "hit", keys[1])).Cache!);
            pointOneReports.Add(Sample(pointOneMs, () => Expect(Cache(pointOneRoot, CacheMode.ReadOnly).Compile(checkpoint, pipeline), "hit", keys[0])).Cache!);
        }
        var (cold, withSave, warmFinal, warmPointOne) = (Timing.Of(coldMs), Timing.Of(saveMs), Timing.Of(finalMs), Timing.Of(pointOneMs));

        Console.Error.WriteLine($"{model}: restore breakdown");
        var restore = RestoreBreakdown.Measure(new SnapshotStore(new CacheSettings(finalRoot)), checkpoint, pipeline, keys[1], repeats);

        var saveMedian = Timing.Of(saveReports.Select(c => c.SaveMs).ToList()).MedianMs;
        var transforms = coldHistories[0].Select((t, i) =>
            new TransformTime(t.Name, Timing.Of(coldHistories.Select(h => h[i].Ms).ToList()).MedianMs, t.NodesAfter)).ToList();
        return new ModelCacheResult(model, options.Layers, options.MaxPositions, new FileInfo(weights).Length, DiskBytes(weights),
            ModelCompiler.Export(checkpoint).Nodes.Count,
            cold, Timing.Of(coldExportMs).MedianMs, Timing.Of(coldPipelineMs).MedianMs,
            withSave, saveMedian, 100 * saveMedian / cold.MedianMs, 100 * (withSave.MedianMs / cold.MedianMs - 1),
            warmPointOne, Timing.Of(pointOneReports.Select(c => c.RestoreMs).ToList()).MedianMs,
            warmFinal, Timing.Of(finalReports.Select(c => c.RestoreMs).ToList()).MedianMs,
            cold.MedianMs / warmPointOne.MedianMs, cold.MedianMs / warmFinal.MedianMs, entries, transforms, restore);
    }

    // Times one run after a full collection, so earlier garbage is not charged to it.
    private static CompileResult Sample(List<double> samples, Func<CompileResult> run)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var clock = Stopwatch.StartNew();
        var result = run();
        samples.Add(clock.Elapsed.TotalMilliseconds);
        return result;
    }

    // A run that did not do what the measurement assumes would make its number meaningless.
    private static CompileResult Expect(CompileResult result, string status, SnapshotKey? point)
    {
        var report = result.Cache!;
        if (report.Status != status || (point is not null && report.Key != point.Key) || report.Warnings.Count > 0)
            throw new InvalidOperationException($"expected a {status}{(point is null ? "" : $" at entry {point.EntryIndex}")}, got: {report.Summary} {string.Join("; ", report.Warnings)}");
        if (status == "miss" && report.Published != 2) throw new InvalidOperationException($"a miss published {report.Published} entries, not 2");
        return result;
    }

    // A point's node count is the one after the last transform before it (points are not in the history).
    private static IReadOnlyList<EntrySize> Sizes(SnapshotStore store, PipelineConfig pipeline, IReadOnlyList<SnapshotKey> keys, IReadOnlyList<TransformInfo> history) =>
        keys.Select((key, i) =>
        {
            var directory = store.EntryDirectory(key.Key);
            long Bytes(string relative) => new FileInfo(Path.Combine(directory, relative)).Length;
            var rank = SnapshotStore.RankDirectory(0);
            var total = Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            return new EntrySize(i == keys.Count - 1 ? "final" : $"point {i + 1}", history[pipeline.Entries.Take(key.EntryIndex).OfType<TransformStep>().Count() - 1].NodesAfter, Bytes(SnapshotStore.ManifestFile),
                Bytes($"{rank}/{SnapshotFiles.GraphFile}"), Bytes($"{rank}/{SnapshotFiles.BuffersFile}"), total);
        }).ToList();

    // Blocks in use, as du counts them: the sparse checkpoint's data section has none.
    private static long DiskBytes(string path)
    {
        using var du = Process.Start(new ProcessStartInfo("du", ["--block-size=1", path]) { RedirectStandardOutput = true })!;
        var output = du.StandardOutput.ReadToEnd();
        du.WaitForExit();
        return long.Parse(output.Split('\t')[0]);
    }
}
