using Kiln.Graph;

namespace Kiln.Transforms.Compile;

/// <summary>
/// compile: every float32 <c>linear</c> over a weight parameter becomes <c>kiln_linear</c> (plus an
/// <c>add</c> for a bias), which runs on Kiln's own kernel (Kernels/LinearKernel) instead of ORT's
/// MatMul. That kernel streams each weight once per product from where it is mapped, the access
/// pattern that reaches the machine's read bandwidth in one-token decode steps, and needs no
/// pre-packed copy of the weights (docs/performance.md). Disable it to run ORT's MatMul.
/// </summary>
public sealed class UseKilnLinearTransform : Transform<TransformConfig>
{
    public override string Name => "use_kiln_linear";

    public override Stage Stage => Stage.Compile;

    protected override int Rewrite(ModelGraph graph, TransformConfig config, TransformContext context)
    {
        var weights = graph.Parameters.Select(p => p.Value).ToHashSet(ReferenceEqualityComparer.Instance);
        var linears = graph.Nodes
            .Where(n => n.Op == "linear" && weights.Contains(n.Inputs[1])
                && n.Inputs[0].DType == DType.F32 && n.Inputs[1].DType == DType.F32)
            .ToList();
        foreach (var linear in linears)
        {
            var product = graph.CreateNode("kiln_linear", [linear.Inputs[0], linear.Inputs[1]], nameHint: linear.Output.Name);
            graph.InsertBefore(linear, product);
            var result = product.Output;
            if (linear.Inputs.Count == 3)
            {
                var biased = graph.CreateNode("add", [product.Output, linear.Inputs[2]], nameHint: linear.Output.Name);
                graph.InsertBefore(linear, biased);
                result = biased.Output;
            }
            graph.ReplaceUses(linear.Output, result);
        }
        graph.RemoveNodes(linears);
        return linears.Count;
    }
}
