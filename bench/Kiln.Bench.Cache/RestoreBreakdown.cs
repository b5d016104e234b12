using System.Diagnostics;
using System.Text;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Ops;
using Kiln.Transforms;

namespace Kiln.Bench.Cache;

/// <summary>
/// Where a restore of the final entry goes, phase by phase (medians, ms), by calling the steps
/// <see cref="SnapshotStore.TryRestore"/> takes: computing the keys (the checkpoint fingerprint
/// included), reading the manifest, checking every file (names, links, sizes; this rank's two files read
/// into memory once and SHA-256 hashed there) and <see cref="SnapshotFiles.Read"/> building the graph from
/// those bytes. Two parts of the latter are timed again on their own: parsing graph.json and the graph
/// verifier (type re-inference of every node); the rest is slicing the buffers and building the graph.
/// </summary>
internal sealed record RestoreBreakdown(double KeysMs, double ManifestMs, double VerifyFilesMs, double BuildGraphMs,
    double ParseGraphJsonMs, double VerifyGraphMs)
{
    public double TotalMs => KeysMs + ManifestMs + VerifyFilesMs + BuildGraphMs;

    public static RestoreBreakdown Measure(SnapshotStore store, Checkpoint checkpoint, PipelineConfig pipeline, SnapshotKey key, int repeats)
    {
        var directory = store.EntryDirectory(key.Key);
        var rank = Path.Combine(directory, SnapshotStore.RankDirectory(0));
        var phases = new List<double[]>();
        for (var r = 0; r <= repeats; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var times = new double[6];
            var clock = Stopwatch.StartNew();
            double Lap()
            {
                var ms = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                return ms;
            }
            SnapshotKeys.ForPoints(checkpoint, pipeline, FingerprintMode.Headers, 1, 1);
            times[0] = Lap();
            var manifest = SnapshotStore.ReadManifest(directory);
            times[1] = Lap();
            var (graphFile, buffersFile) = ($"{SnapshotStore.RankDirectory(0)}/{SnapshotFiles.GraphFile}", $"{SnapshotStore.RankDirectory(0)}/{SnapshotFiles.BuffersFile}");
            var contents = SnapshotStore.VerifyFiles(directory, manifest, keep: [graphFile, buffersFile], trustShared: false);
            times[2] = Lap();
            var graph = SnapshotFiles.Read(contents[graphFile], contents[buffersFile], OpRegistry.Default);
            times[3] = Lap();
            GraphSerializer.ReadDocument(Encoding.UTF8.GetString(contents[graphFile]));
            times[4] = Lap();
            GraphVerifier.Verify(graph);
            times[5] = Lap();
            if (r > 0) phases.Add(times); // the first pass is the untimed warm-up
        }
        double Median(int phase) => Timing.Of(phases.Select(p => p[phase]).ToList()).MedianMs;
        return new RestoreBreakdown(Median(0), Median(1), Median(2), Median(3), Median(4), Median(5));
    }
}
