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
/// into memory once and SHA-256 hashed there), parsing graph.json, slicing the buffers out of
/// buffers.safetensors, building the graph (op registry, values) and the graph verifier (type
/// re-inference of every node).
/// </summary>
internal sealed record RestoreBreakdown(double KeysMs, double ManifestMs, double VerifyFilesMs, double ParseGraphJsonMs,
    double ReadBuffersMs, double BuildGraphMs, double VerifyGraphMs)
{
    public double TotalMs => KeysMs + ManifestMs + VerifyFilesMs + ParseGraphJsonMs + ReadBuffersMs + BuildGraphMs + VerifyGraphMs;

    public static RestoreBreakdown Measure(SnapshotStore store, Checkpoint checkpoint, PipelineConfig pipeline, SnapshotKey key, int repeats)
    {
        var directory = store.EntryDirectory(key.Key);
        var rank = Path.Combine(directory, SnapshotStore.RankDirectory(0));
        var phases = new List<double[]>();
        for (var r = 0; r <= repeats; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var times = new double[7];
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
            var contents = SnapshotStore.VerifyFiles(directory, manifest, keep: [graphFile, buffersFile]);
            times[2] = Lap();
            var document = GraphSerializer.ReadDocument(Encoding.UTF8.GetString(contents[graphFile]));
            times[3] = Lap();
            var bytes = contents[buffersFile];
            using (var stream = new MemoryStream(bytes, writable: false))
            {
                var header = SafetensorsHeader.Read(SnapshotFiles.BuffersFile, stream);
                document = document with { Buffers = document.Buffers.Select(b => b with { Data = bytes.AsSpan((int)header.Tensors[b.Name].DataOffset, (int)header.Tensors[b.Name].ByteLength).ToArray() }).ToList() };
            }
            times[4] = Lap();
            var graph = GraphSerializer.FromDocument(document, OpRegistry.Default);
            var buildAndVerify = Lap();
            GraphVerifier.Verify(graph);
            times[6] = Lap();
            times[5] = buildAndVerify - times[6]; // FromDocument ends with the verifier
            if (r > 0) phases.Add(times); // the first pass is the untimed warm-up
        }
        double Median(int phase) => Timing.Of(phases.Select(p => p[phase]).ToList()).MedianMs;
        return new RestoreBreakdown(Median(0), Median(1), Median(2), Median(3), Median(4), Median(5), Median(6));
    }
}
