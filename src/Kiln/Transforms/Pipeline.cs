using System.Diagnostics;
using Kiln.Graph;

namespace Kiln.Transforms;

/// <summary>
/// Runs a pipeline's entries in order over a graph. After each transform step the graph is verified (a
/// transform that breaks the IR is named), its <see cref="TransformInfo"/> is appended to the graph's
/// history, and the optional observer sees the result (for dumps and verification). At each enabled
/// snapshot point, <c>atPoint</c> sees the graph and the point's index (the snapshot cache saves it).
/// </summary>
public static class Pipeline
{
    /// <summary>
    /// Runs the entries from <paramref name="startIndex"/> on (earlier ones are already in the graph,
    /// restored from a snapshot); returns the milliseconds spent, not counting the callbacks.
    /// </summary>
    public static double Run(ModelGraph graph, IReadOnlyList<PipelineEntry> entries, TransformContext context,
        Action<TransformStep, TransformInfo, ModelGraph>? observer = null, int startIndex = 0, Action<int, ModelGraph>? atPoint = null)
    {
        var total = Stopwatch.StartNew();
        for (var index = startIndex; index < entries.Count; index++)
        {
            switch (entries[index])
            {
                case TransformStep step:
                    var info = Apply(graph, step, context);
                    total.Stop();
                    observer?.Invoke(step, info, graph);
                    total.Start();
                    break;
                case SnapshotPoint { Enabled: true }:
                    total.Stop();
                    atPoint?.Invoke(index, graph);
                    total.Start();
                    break;
            }
        }
        return total.Elapsed.TotalMilliseconds;
    }

    private static TransformInfo Apply(ModelGraph graph, TransformStep step, TransformContext context)
    {
        var clock = Stopwatch.StartNew();
        var matches = step.Enabled ? step.Transform.Apply(graph, step.Config, context) : 0;
        var ms = clock.Elapsed.TotalMilliseconds;
        try
        {
            GraphVerifier.Verify(graph);
        }
        catch (GraphException e)
        {
            throw new GraphException($"transform {step.Name} left an invalid graph: {e.Message}");
        }
        var info = new TransformInfo(step.Name, step.Stage.Name(), !step.Enabled, matches, GraphAnalysis.DeadNodes(graph).Count == 0, true, ms, graph.Nodes.Count);
        graph.History.Add(info);
        return info;
    }
}
