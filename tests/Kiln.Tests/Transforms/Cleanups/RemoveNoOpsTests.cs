using Kiln.Export;
using Kiln.Graph;

namespace Kiln.Tests.Transforms.Cleanups;

public sealed class RemoveNoOpsTests
{
    [Fact]
    public void Removes_the_two_same_dtype_casts_of_rms_norm()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, Dim.Sym("batch"), 8);
        var weight = t.Parameter("weight", 8);
        var h = x.Cast(DType.F32);
        var variance = h.Pow(2).Mean(-1, keepdim: true);
        h = h * (variance + 1e-5).Rsqrt();
        var output = weight * h.Cast(DType.F32);
        t.Output(output);

        var graph = t.Graph;
        Assert.Equal(2, Cleanup.Apply("remove_no_ops", graph));

        Assert.Equal(["constant", "pow", "mean", "constant", "add", "rsqrt", "mul", "mul"], Cleanup.Ops(graph));
        Assert.Same(x.Value, graph.Nodes[1].Inputs[0]);
        Assert.Same(x.Value, graph.Nodes[6].Inputs[0]);
        Assert.Same(graph.Nodes[6].Output, Cleanup.Producer(graph, output).Inputs[1]);
    }

    [Fact]
    public void Removes_identity_shape_ops_and_keeps_the_ones_that_move_data()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, Dim.Sym("batch"), 4, 8);
        var sameReshape = x.View(0, 0, -1);
        var newShape = x.View(0, -1);
        var identityTranspose = t.Op("transpose", [x], new() { ["perm"] = new long[] { 0, 1, 2 } });
        var swap = x.Transpose(1, 2);
        var fullSymbolic = x.Slice(0, 0, long.MaxValue);
        var fullKnown = x.Slice(-1, 0, 8);
        var fromMinusDim = x.Slice(-1, -8, 100);
        var half = x.Slice(-1, 0, 4);
        var sameExpand = x.Expand(1, 1, 1);
        var wider = x.Unsqueeze(1).Expand(1, 2, 1, 1);
        var toHalf = x.Cast(DType.F16);
        Tensor[] removed = [sameReshape, identityTranspose, fullSymbolic, fullKnown, fromMinusDim, sameExpand];
        Tensor[] kept = [newShape, swap, half, wider, toHalf];
        foreach (var tensor in removed.Concat(kept)) t.Output(tensor);

        var graph = t.Graph;
        Assert.Equal(removed.Length, Cleanup.Apply("remove_no_ops", graph));

        Assert.Equal(["reshape", "transpose", "slice", "unsqueeze", "expand", "cast"], Cleanup.Ops(graph));
        Assert.Equal(removed.Select(_ => x.Value).Concat(kept.Select(k => k.Value)), graph.Outputs);
    }

    [Fact]
    public void Removes_arithmetic_identities_and_their_unread_constants()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 2, 3);
        var plusZero = x + 0;
        var zeroPlus = t.Scalar(0, DType.F32) + plusZero;
        var timesOne = zeroPlus * 1;
        var oneTimes = t.Scalar(1, DType.F32) * timesOne;
        var overOne = oneTimes / 1;
        t.Output(overOne);

        var graph = t.Graph;
        Assert.Equal(5, Cleanup.Apply("remove_no_ops", graph));

        Assert.Empty(graph.Nodes);
        Assert.Same(x.Value, Assert.Single(graph.Outputs));
    }

    [Fact]
    public void Keeps_arithmetic_that_changes_values_or_shapes()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 3);
        var n = t.Input("n", DType.I64, 3);
        var one = t.Scalar(1, DType.F32);
        var zeros = t.Scalar(0, DType.F32).Expand(2, 3);
        t.Output(x + zeros); // a broadcasting add of 0 enlarges [3] to [2, 3]
        t.Output(one / x);
        t.Output(x - one);
        t.Output(x * 2);
        t.Output(x + 1);
        t.Output(n * t.Scalar(2, DType.I64));
        var before = GraphPrinter.Print(t.Graph);

        Assert.Equal(0, Cleanup.Apply("remove_no_ops", t.Graph));
        Assert.Equal(before, GraphPrinter.Print(t.Graph));
    }

    [Fact]
    public void A_constant_still_read_elsewhere_stays()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 3);
        var zero = t.Scalar(0, DType.F32);
        t.Output(x + zero);
        t.Output(t.Op("where", [x.Greater(zero), x, zero]));

        Assert.Equal(1, Cleanup.Apply("remove_no_ops", t.Graph));
        Assert.Equal(["constant", "greater", "where"], Cleanup.Ops(t.Graph));
        Assert.Same(x.Value, t.Graph.Outputs[0]);
    }
}
