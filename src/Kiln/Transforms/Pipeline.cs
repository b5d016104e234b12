using System.Diagnostics;
using Kiln.Graph;

namespace Kiln.Transforms;

/// <summary>
/// Runs a pipeline's transforms in order over a graph. After each one the graph is verified (a
/// transform that breaks the IR is named), its <see cref="TransformInfo"/> is appended to the graph's
/// history, and the optional observer sees the result (for dumps and verification).
/// </summary>
public static class Pipeline
{
    /// <summary>
    /// Runs the transforms from <paramref name="startIndex"/> on (earlier ones are already in the graph,
    /// restored from a snapshot); returns the milliseconds spent, not counting the observer.
    /// </summary>
    public static double Run(ModelGraph graph, IReadOnlyList<PipelineEntry> entries, TransformContext context,
        Action<PipelineEntry, TransformInfo, ModelGraph>? observer = null, int startIndex = 0)
    {
        var total = Stopwatch.StartNew();
        foreach (var entry in entries.Skip(startIndex))
        {
            var clock = Stopwatch.StartNew();
            var skipped = !entry.Config.Enabled;
            var matches = skipped ? 0 : entry.Transform.Apply(graph, entry.Config, context);
            var ms = clock.Elapsed.TotalMilliseconds;
            try
            {
                GraphVerifier.Verify(graph);
            }
            catch (GraphException e)
            {
                throw new GraphException($"transform {entry.Name} left an invalid graph: {e.Message}");
            }
            var info = new TransformInfo(entry.Name, entry.Stage, skipped, matches, GraphAnalysis.DeadNodes(graph).Count == 0, true, ms, graph.Nodes.Count);
            graph.History.Add(info);
            total.Stop();
            observer?.Invoke(entry, info, graph);
            total.Start();
        }
        return total.Elapsed.TotalMilliseconds;
    }
}
