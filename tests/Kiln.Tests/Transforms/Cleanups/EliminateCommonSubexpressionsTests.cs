using Kiln.Graph;

namespace Kiln.Tests.Transforms.Cleanups;

public sealed class EliminateCommonSubexpressionsTests
{
    [Fact]
    public void Merges_equal_nodes_and_cascades_to_their_readers()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 2, 3);
        var first = x.Unsqueeze(1);
        var second = x.Unsqueeze(1);
        var otherAxis = x.Unsqueeze(0);
        var negFirst = -first;
        var negSecond = -second;
        t.Output(negFirst + negSecond);
        t.Output(otherAxis);

        var graph = t.Graph;
        Assert.Equal(2, Cleanup.Apply("eliminate_common_subexpressions", graph));

        Assert.Equal(["unsqueeze", "unsqueeze", "neg", "add"], Cleanup.Ops(graph));
        Assert.Same(first.Value, graph.Nodes[0].Output);
        Assert.Same(otherAxis.Value, graph.Nodes[1].Output);
        Assert.Equal([negFirst.Value, negFirst.Value], graph.Nodes[3].Inputs);
    }

    [Fact]
    public void Merges_constants_by_value_and_dtype_only()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 3);
        var two = t.Scalar(2, DType.F32);
        var twoAgain = t.Scalar(2, DType.F32);
        var three = t.Scalar(3, DType.F32);
        var zero = t.Scalar(0, DType.F32);
        var negativeZero = t.Scalar(-0.0, DType.F32);
        var twoI64 = t.Scalar(2, DType.I64);
        t.Output(x * two + x * twoAgain + x * three + zero + negativeZero);
        t.Output(twoI64);

        var graph = t.Graph;
        // twoAgain merges into two, and then x * twoAgain into x * two.
        Assert.Equal(2, Cleanup.Apply("eliminate_common_subexpressions", graph));

        var constants = graph.Nodes.Where(n => n.Op == "constant").Select(n => n.Output).ToArray();
        Assert.Equal([two.Value, three.Value, zero.Value, negativeZero.Value, twoI64.Value], constants);
        Assert.Equal(2, graph.Nodes.Count(n => n.Op == "mul"));
    }

    [Fact]
    public void Keeps_nodes_on_different_inputs_or_in_different_order()
    {
        var t = Cleanup.NewTracer();
        var a = t.Input("a", DType.F32, 3);
        var b = t.Input("b", DType.F32, 3);
        t.Output(a - b);
        t.Output(b - a);
        t.Output(a.Slice(0, 0, 1));
        t.Output(a.Slice(0, 1, 2));
        var before = GraphPrinter.Print(t.Graph);

        Assert.Equal(0, Cleanup.Apply("eliminate_common_subexpressions", t.Graph));
        Assert.Equal(before, GraphPrinter.Print(t.Graph));
    }

    [Fact]
    public void A_merged_graph_output_reads_the_first_node()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 3);
        var first = x.Cast(DType.F16);
        var second = x.Cast(DType.F16);
        t.Output(first);
        t.Output(second);

        Assert.Equal(1, Cleanup.Apply("eliminate_common_subexpressions", t.Graph));
        Assert.Equal([first.Value, first.Value], t.Graph.Outputs);
    }
}
