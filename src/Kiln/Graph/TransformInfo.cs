namespace Kiln.Graph;

/// <summary>
/// What one transform did to a graph: whether it was skipped (disabled), how many rewrites it made, whether
/// the graph was left clean (no dead nodes) with valid shapes (verified), how long it took and the node count
/// after it. The list of these travels with the graph as its history. The stage is its name ("post_export"):
/// the graph records what the pipeline said, without depending on the pipeline's types.
/// </summary>
public sealed record TransformInfo(string Name, string Stage, bool Skipped, int Matches, bool GraphClean, bool ShapesValid, double Ms, int NodesAfter);
