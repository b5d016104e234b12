using System.Runtime.CompilerServices;
using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// post_export: merges nodes that compute the same thing: the same op on the same input values (by
/// identity) with equal attributes; constants thus merge by value and dtype. The first node stays and
/// the later one's readers read it. Hash-consing in one pass over the topological order suffices:
/// inputs are forwarded before a node is looked up, so merges cascade.
/// </summary>
public sealed class EliminateCommonSubexpressionsTransform : Transform<TransformConfig>
{
    public override string Name => "eliminate_common_subexpressions";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var first = new Dictionary<NodeKey, Node>();
        return ValueForwarding.Forward(graph, node =>
        {
            var key = new NodeKey(node);
            if (first.TryGetValue(key, out var earlier)) return earlier.Outputs;
            first.Add(key, node);
            return null;
        });
    }

    /// <summary>What makes two nodes interchangeable. Floats compare by bits, so 0 and -0 stay apart.</summary>
    private sealed class NodeKey(Node node) : IEquatable<NodeKey>
    {
        private readonly int _hash = Hash(node);

        public Node Node { get; } = node;

        public bool Equals(NodeKey? other)
        {
            if (other is null || _hash != other._hash) return false;
            var (a, b) = (Node, other.Node);
            if (a.Op != b.Op || a.Inputs.Count != b.Inputs.Count || a.Attributes.Count != b.Attributes.Count) return false;
            for (var i = 0; i < a.Inputs.Count; i++)
            {
                if (!ReferenceEquals(a.Inputs[i], b.Inputs[i])) return false;
            }
            foreach (var (name, value) in a.Attributes)
            {
                if (!b.Attributes.TryGetValue(name, out var otherValue) || !SameAttribute(value, otherValue)) return false;
            }
            return true;
        }

        public override bool Equals(object? obj) => Equals(obj as NodeKey);

        public override int GetHashCode() => _hash;

        private static int Hash(Node node)
        {
            var hash = new HashCode();
            hash.Add(node.Op);
            foreach (var input in node.Inputs) hash.Add(RuntimeHelpers.GetHashCode(input));
            foreach (var (name, value) in node.Attributes)
            {
                hash.Add(name);
                hash.Add(value is FloatAttribute f ? BitConverter.DoubleToInt64Bits(f.Value).GetHashCode() : value.GetHashCode());
            }
            return hash.ToHashCode();
        }

        private static bool SameAttribute(AttributeValue a, AttributeValue b) => a is FloatAttribute f && b is FloatAttribute g
            ? BitConverter.DoubleToInt64Bits(f.Value) == BitConverter.DoubleToInt64Bits(g.Value)
            : a.Equals(b);
    }
}
