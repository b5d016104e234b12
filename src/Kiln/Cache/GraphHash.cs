using System.Text.Json;
using Kiln.Graph;
using Kiln.Graph.Json;

namespace Kiln.Cache;

/// <summary>A digest of what a graph computes: its JSON form without the history (which holds timings).</summary>
public static class GraphHash
{
    public static string Of(ModelGraph graph) =>
        SnapshotKeys.Digest(JsonSerializer.Serialize(GraphSerializer.ToDocument(graph) with { History = [] }, GraphJsonContext.Default.GraphDocument));
}
