namespace Kiln.Graph;

/// <summary>A graph that breaks the IR's rules: a compiler bug or a corrupt graph file, not a user error.</summary>
public sealed class GraphException(string message) : Exception(message);
