using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// post_export: folding of shape arithmetic. A node whose inputs are all scalar <c>constant</c>s
/// (add/sub/mul/div/pow, neg and unary math, cast) becomes one <c>constant</c> holding the computed
/// value, rounded to its dtype; the operands it leaves unread go. Weights and buffers are never read.
/// </summary>
public sealed class FoldConstantsTransform : Transform<TransformConfig>
{
    public override string Name => "fold_constants";

    public override Stage Stage => Stage.PostExport;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        // Run-time values of the constants seen so far, folded ones included, so chains fold in one pass.
        var constants = new Dictionary<Value, double>(ReferenceEqualityComparer.Instance);
        var operands = new HashSet<Value>(ReferenceEqualityComparer.Instance);
        var folds = 0;
        for (var i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            if (node.Op == "constant")
            {
                if (ScalarArithmetic.Represent(node.Float("value"), node.Output.DType) is { } v) constants[node.Output] = v;
                continue;
            }
            if (node.Outputs.Count != 1 || node.Inputs.Count == 0 || !node.Inputs.All(constants.ContainsKey)) continue;
            if (ScalarArithmetic.Evaluate(node.Op, node.Inputs.Select(x => constants[x]).ToArray(), node.Output.DType) is not { } value) continue;

            // The constant takes over the node's output value, so its readers need no rewiring.
            var attributes = new Dictionary<string, AttributeValue> { ["value"] = value, ["dtype"] = node.Output.DType.Name() };
            graph.ReplaceNode(node, "constant", [], attributes);
            constants[node.Output] = value;
            operands.UnionWith(node.Inputs);
            folds++;
        }
        ValueForwarding.RemoveUnreadConstants(graph, operands);
        return folds;
    }
}
