using Kiln.Graph;

namespace Kiln.Transforms.Fusions;

/// <summary>Attribute conditions the fusion patterns share: axes that name the last dimension, and the like.</summary>
internal static class Axes
{
    /// <summary>The int attribute <paramref name="name"/> is the last axis of the node's first input (-1 or rank - 1).</summary>
    public static Func<Node, bool> IsLast(string name) => node => IsLastOf(node, node.Int(name));

    /// <summary>The node reduces over the last axis only (<c>axes</c> is [-1] or [rank - 1]).</summary>
    public static bool ReducesLast(Node node) => node.Ints("axes") is [var axis] && IsLastOf(node, axis);

    /// <summary>The perm swaps the last two dimensions and keeps the others.</summary>
    public static bool SwapsLastTwo(Node node)
    {
        var perm = node.Ints("perm");
        var rank = perm.Length;
        if (rank < 2 || perm[^1] != rank - 2 || perm[^2] != rank - 1) return false;
        for (var i = 0; i < rank - 2; i++)
        {
            if (perm[i] != i) return false;
        }
        return true;
    }

    private static bool IsLastOf(Node node, long axis) => axis == -1 || axis == node.Inputs[0].Shape.Rank - 1;
}
