using Kiln.Graph;

namespace Kiln.Transforms;

/// <summary>
/// Puts a product node in the place of a <c>linear(x, weight, bias?)</c>: the product (x·weightᵀ, no bias)
/// goes before the linear, followed by an <c>add</c> of the bias when the linear has one, and every reader
/// of the linear reads the result instead. The linear itself is left for the caller to remove.
/// </summary>
public static class LinearReplacement
{
    public static void Replace(ModelGraph graph, Node linear, Node product)
    {
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
}
