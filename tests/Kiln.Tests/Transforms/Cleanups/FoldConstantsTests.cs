using Kiln.Graph;

namespace Kiln.Tests.Transforms.Cleanups;

public sealed class FoldConstantsTests
{
    [Fact]
    public void Folds_a_chain_of_integer_arithmetic_into_one_constant_and_drops_the_operands()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.I64, 4);
        var size = (t.Scalar(7, DType.I64) - t.Scalar(3, DType.I64)) * t.Scalar(2, DType.I64);
        var shifted = x + size;
        t.Output(shifted);

        var graph = t.Graph;
        Assert.Equal(2, Cleanup.Apply("fold_constants", graph));

        Assert.Equal(["constant", "add"], Cleanup.Ops(graph));
        var folded = graph.Nodes[0];
        Assert.Same(size.Value, folded.Output);
        Assert.Equal(8, folded.Float("value"));
        Assert.Equal("i64", folded.String("dtype"));
        Assert.Equal([x.Value, size.Value], Cleanup.Producer(graph, shifted).Inputs);
    }

    [Theory]
    [InlineData("div", 7, -2, -3)]
    [InlineData("div", -7, 2, -3)]
    [InlineData("sub", 3, 10, -7)]
    [InlineData("pow", 3, 4, 81)]
    public void Integer_ops_compute_in_i64(string op, double a, double b, double expected)
    {
        var t = Cleanup.NewTracer();
        var result = t.Op(op, [t.Scalar(a, DType.I64), t.Scalar(b, DType.I64)]);
        t.Output(result);

        Assert.Equal(1, Cleanup.Apply("fold_constants", t.Graph));
        Assert.Equal(expected, Cleanup.ConstantValue(t.Graph, result.Value));
    }

    [Fact]
    public void Float_ops_are_rounded_to_f32_after_each_step()
    {
        var t = Cleanup.NewTracer();
        var third = t.Scalar(1, DType.F32) / t.Scalar(3, DType.F32);
        var scaled = third * t.Scalar(0.1, DType.F32);
        t.Output(scaled);

        Assert.Equal(2, Cleanup.Apply("fold_constants", t.Graph));
        Assert.Equal((double)(1f / 3f * 0.1f), Cleanup.ConstantValue(t.Graph, scaled.Value));
    }

    [Fact]
    public void F64_keeps_double_precision_and_unary_ops_fold()
    {
        var t = Cleanup.NewTracer();
        var root = t.Op("rsqrt", [t.Scalar(2, DType.F64)]);
        var negated = -root;
        t.Output(negated);

        Assert.Equal(2, Cleanup.Apply("fold_constants", t.Graph));
        Assert.Equal(-1 / Math.Sqrt(2), Cleanup.ConstantValue(t.Graph, negated.Value));
    }

    [Fact]
    public void Casts_truncate_to_integers_and_round_to_floats()
    {
        var t = Cleanup.NewTracer();
        var truncated = t.Scalar(-2.7, DType.F32).Cast(DType.I64);
        var widened = t.Scalar(16777217, DType.I64).Cast(DType.F32);
        t.Output(truncated);
        t.Output(widened);

        Assert.Equal(2, Cleanup.Apply("fold_constants", t.Graph));
        Assert.Equal(-2, Cleanup.ConstantValue(t.Graph, truncated.Value));
        Assert.Equal(16777216, Cleanup.ConstantValue(t.Graph, widened.Value));
        Assert.Equal(["constant", "constant"], Cleanup.Ops(t.Graph));
    }

    [Fact]
    public void Leaves_nodes_with_tensor_parameter_or_buffer_inputs_and_keeps_shared_constants()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 4);
        var scalarWeight = t.Parameter("scale");
        var buffer = t.Buffer("offset", [1f]);
        var two = t.Scalar(2, DType.F32);
        var withInput = x * two;
        var withWeight = scalarWeight * two;
        var withBuffer = buffer + two;
        var folded = two + two;
        t.Output(withInput);
        t.Output(withWeight);
        t.Output(withBuffer);
        t.Output(folded);

        Assert.Equal(1, Cleanup.Apply("fold_constants", t.Graph));

        Assert.Equal(["constant", "mul", "mul", "add", "constant"], Cleanup.Ops(t.Graph));
        Assert.Same(two.Value, t.Graph.Nodes[0].Output);
        Assert.Equal(4, Cleanup.ConstantValue(t.Graph, folded.Value));
    }

    [Fact]
    public void Does_not_fold_integer_division_by_zero_or_non_finite_results()
    {
        var t = Cleanup.NewTracer();
        var byZero = t.Scalar(1, DType.I64) / t.Scalar(0, DType.I64);
        var infinite = t.Scalar(1, DType.F32) / t.Scalar(0, DType.F32);
        var overflow = t.Scalar(3e38, DType.F32) * t.Scalar(10, DType.F32);
        t.Output(byZero);
        t.Output(infinite);
        t.Output(overflow);

        Assert.Equal(0, Cleanup.Apply("fold_constants", t.Graph));
        Assert.Equal(3, t.Graph.Nodes.Count(n => n.Op != "constant"));
    }
}
