namespace Kiln.Transforms;

/// <summary>
/// What one transform did: whether it was skipped (disabled), how many rewrites it made, whether the
/// graph was left clean (no dead nodes) with valid shapes (verified), how long it took and the node
/// count after it. The list of these travels with the graph as its history.
/// </summary>
public sealed record TransformInfo(string Name, Stage Stage, bool Skipped, int Matches, bool GraphClean, bool ShapesValid, double Ms, int NodesAfter);
