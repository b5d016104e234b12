using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms.PatternMatching;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Tests.Transforms.PatternMatching;

public sealed class PatternRewriterTests
{
    // neg(neg(x)) -> x: the smallest rule that removes nodes.
    private static readonly RewriteRule DoubleNegation = new("double_negation", Op("neg", Op("neg", Any("x"))), m => [m["x"]]);

    private static (Tracer Tracer, Tensor X) NewGraph(params Dim[] dims)
    {
        var t = new Tracer(OpRegistry.Default);
        return (t, t.Input("x", DType.F32, dims.Length == 0 ? [Dim.Sym("batch"), 8] : dims));
    }

    private static int Count(ModelGraph graph, string op) => graph.Nodes.Count(n => n.Op == op);

    [Fact]
    public void A_match_is_replaced_and_its_nodes_removed()
    {
        var (t, x) = NewGraph();
        t.Output((-(-x)).Cos());

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, DoubleNegation));

        GraphVerifier.Verify(t.Graph);
        Assert.Equal(0, Count(t.Graph, "neg"));
        Assert.Same(x.Value, t.Graph.Nodes.Single(n => n.Op == "cos").Inputs[0]);
    }

    [Fact]
    public void An_interior_value_read_outside_the_match_blocks_it()
    {
        var (t, x) = NewGraph();
        var inner = -x;
        t.Output(-inner);
        t.Output(inner.Cos());

        Assert.Equal(0, PatternRewriter.Rewrite(t.Graph, DoubleNegation));
        Assert.Equal(2, Count(t.Graph, "neg"));
    }

    [Fact]
    public void An_interior_value_that_is_a_graph_output_blocks_the_match()
    {
        var (t, x) = NewGraph();
        var inner = -x;
        t.Output(-inner);
        t.Output(inner);

        Assert.Equal(0, PatternRewriter.Rewrite(t.Graph, DoubleNegation));
    }

    [Fact]
    public void A_capture_used_twice_must_bind_the_same_value()
    {
        var (t, x) = NewGraph();
        var y = t.Input("y", DType.F32, Dim.Sym("batch"), 8);
        t.Output(x + x);
        t.Output(x + y);
        var doubling = new RewriteRule("doubling", Op("add", Any("a"), Any("a")),
            m => [m.Emit("mul", [m["a"], m.Emit("constant", [], new() { ["value"] = 2.0, ["dtype"] = "f32" })])]);

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, doubling));

        GraphVerifier.Verify(t.Graph);
        Assert.Equal(1, Count(t.Graph, "add"));
        Assert.Equal([x.Value, y.Value], t.Graph.Nodes.Single(n => n.Op == "add").Inputs);
    }

    [Fact]
    public void Attribute_constraints_select_nodes()
    {
        var (t, x) = NewGraph();
        t.Output(x.Softmax(-1));
        t.Output(x.Softmax(0));
        var rule = new RewriteRule("last_axis_softmax", Op("softmax", Any("x")).Attr("axis", -1L), m => [m.Emit("exp", [m["x"]])]);

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, rule));
        Assert.Equal(0, t.Graph.Nodes.Single(n => n.Op == "softmax").Int("axis"));
    }

    [Fact]
    public void Constant_constraints_check_the_value_and_constants_stay_while_read()
    {
        var (t, x) = NewGraph();
        var two = t.Scalar(2, DType.F32);
        t.Output(t.Op("pow", [x, two]));
        t.Output(x.Pow(3));
        t.Output(x * two);
        var square = new RewriteRule("square", Op("pow", Any("x"), Constant(2)), m => [m.Emit("mul", [m["x"], m["x"]])]);

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, square));

        GraphVerifier.Verify(t.Graph);
        Assert.Equal(3, ConstantValue(t.Graph, t.Graph.Nodes.Single(n => n.Op == "pow").Inputs[1]));
        Assert.Contains(t.Graph.Nodes, n => n.Op == "constant" && n.Float("value") == 2);
    }

    [Fact]
    public void Unread_shared_nodes_are_removed_after_the_pass()
    {
        var (t, x) = NewGraph();
        var pow = x.Pow(2);
        t.Output(pow.Cos());
        var square = new RewriteRule("square", Op("pow", Any("x"), Constant(2)), m => [m.Emit("mul", [m["x"], m["x"]])]);

        PatternRewriter.Rewrite(t.Graph, square);

        Assert.DoesNotContain(t.Graph.Nodes, n => n.Op == "constant");
        Assert.Empty(GraphAnalysis.DeadNodes(t.Graph));
    }

    [Fact]
    public void Value_constraints_check_types()
    {
        var (t, x) = NewGraph();
        var wide = t.Input("w", DType.F32, 2, 3, 4, 5);
        t.Output(-(-x));
        t.Output(-(-wide));
        var rank4 = DoubleNegation with { Pattern = Op("neg", Op("neg", Any("x").Where(v => v.Shape.Rank == 4))) };

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, rank4));
        Assert.Same(wide.Value, t.Graph.Outputs[1]);
        Assert.Equal(2, Count(t.Graph, "neg"));
    }

    [Fact]
    public void Matches_do_not_overlap()
    {
        var (t, x) = NewGraph();
        t.Output((-(-(-x))).Cos());

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, DoubleNegation));

        // The first two negations cancel; the third has nothing left to pair with.
        GraphVerifier.Verify(t.Graph);
        var neg = t.Graph.Nodes.Single(n => n.Op == "neg");
        Assert.Same(x.Value, neg.Inputs[0]);
    }

    [Fact]
    public void Alternatives_and_input_order_backtrack()
    {
        var (t, x) = NewGraph();
        var y = t.Input("y", DType.F32, Dim.Sym("batch"), 8);
        // mul(y, x * sigmoid(x)): the silu alternative is the second one, and in the mul's second input.
        t.Output(y * (x * t.Op("sigmoid", [x])));
        var silu = OneOf(Op("silu", Any("g")), Op("mul", Any("g"), Op("sigmoid", Any("g"))));
        var rule = new RewriteRule("swiglu", Op("mul", silu, Any("up")), m => [m.Emit("swiglu", [m["g"], m["up"]])]);

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, rule));

        var swiglu = t.Graph.Nodes.Single();
        Assert.Equal([x.Value, y.Value], swiglu.Inputs);
    }

    [Fact]
    public void A_declining_builder_leaves_the_graph_unchanged()
    {
        var (t, x) = NewGraph();
        t.Output(-(-x));
        var before = GraphPrinter.Print(t.Graph);
        var declining = DoubleNegation with { Build = m => { m.Emit("exp", [m["x"]]); return null; } };

        Assert.Equal(0, PatternRewriter.Rewrite(t.Graph, declining));
        Assert.Equal(before, GraphPrinter.Print(t.Graph));
    }

    [Fact]
    public void Also_replaced_values_are_rewired_and_order_is_restored()
    {
        var (t, x) = NewGraph();
        var y = t.Input("y", DType.F32, Dim.Sym("batch"), 8);
        var sum = x + y;
        var early = sum.Sin(); // reads the sum before the root
        t.Output(early);
        t.Output(sum.Cos());
        // cos(a + b) -> exp(b + a): into another op, since a rule that rebuilds its own pattern never reaches a fixed point.
        var rule = new RewriteRule("cos_of_sum", Op("cos", Op("add", Any("a"), Any("b")).Named("sum")), m =>
        {
            var s = m.Emit("add", [m["b"], m["a"]]);
            return [m.Emit("exp", [s]), s];
        }) { AlsoReplaces = ["sum"] };

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, rule));

        GraphVerifier.Verify(t.Graph);
        var add = t.Graph.Nodes.Single(n => n.Op == "add");
        Assert.Equal([y.Value, x.Value], add.Inputs);
        Assert.Same(add.Output, t.Graph.Nodes.Single(n => n.Op == "sin").Inputs[0]);
    }

    [Fact]
    public void Rewriting_is_deterministic()
    {
        static string Run()
        {
            var (t, x) = NewGraph();
            for (var i = 0; i < 4; i++) x = (-(-(-x))).Cos();
            t.Output(x);
            PatternRewriter.Rewrite(t.Graph, DoubleNegation);
            return GraphPrinter.Print(t.Graph);
        }

        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void A_rule_is_tried_only_at_nodes_of_its_root_op()
    {
        var (t, x) = NewGraph();
        t.Output((-(x.Sin().Cos())).Cos());
        var tried = new List<string>();
        // The value check on the root runs before anything else: it sees every node the rule is tried at.
        RewriteRule Counting(string op) => new($"counting_{op}", Op(op, Any("x")).Where(v => { tried.Add(v.Producer!.Op); return true; }), _ => null);

        Assert.Equal(0, PatternRewriter.Rewrite(t.Graph, Counting("cos"), Counting("neg")));

        Assert.Equal(["cos", "neg", "cos"], tried);
    }

    [Fact]
    public void Rules_whose_rewrites_enable_each_other_reach_the_fixed_point_in_one_call()
    {
        var (t, x) = NewGraph();
        var y = t.Input("y", DType.F32, Dim.Sym("batch"), 8);
        t.Output(x - (-y));
        // a - b -> a + neg(b) emits neg(neg(y)), which only a later pass sees; listed after the rule that removes it.
        var subtraction = new RewriteRule("subtraction", Op("sub", Any("a"), Any("b")), m => [m.Emit("add", [m["a"], m.Emit("neg", [m["b"]])])]);

        Assert.Equal(2, PatternRewriter.Rewrite(t.Graph, DoubleNegation, subtraction));

        GraphVerifier.Verify(t.Graph);
        var add = Assert.Single(t.Graph.Nodes);
        Assert.Equal([x.Value, y.Value], add.Inputs);
    }

    [Fact]
    public void Rules_that_never_reach_a_fixed_point_fail_after_the_bound()
    {
        var (t, x) = NewGraph();
        t.Output(x.Sin());
        var sinToCos = new RewriteRule("sin_to_cos", Op("sin", Any("x")), m => [m.Emit("cos", [m["x"]])]);
        var cosToSin = new RewriteRule("cos_to_sin", Op("cos", Any("x")), m => [m.Emit("sin", [m["x"]])]);

        var error = Assert.Throws<InvalidOperationException>(() => PatternRewriter.Rewrite(t.Graph, sinToCos, cosToSin));

        Assert.Contains("sin_to_cos, cos_to_sin", error.Message);
        Assert.Contains($"{PatternRewriter.MaxPasses} passes", error.Message);
    }

    [Fact]
    public void Siblings_are_other_readers_of_the_roots_inputs_and_are_replaced_with_it()
    {
        var (t, x) = NewGraph();
        var y = t.Input("y", DType.F32, Dim.Sym("batch"), 8);
        t.Output(x.Sin());
        t.Output(y.Cos());
        t.Output(x.Cos());
        var rule = new RewriteRule("sin_and_cos", Op("sin", Any("x")), m => [m.Emit("neg", [m["x"]]), m.Emit("exp", [m["x"]])])
        {
            Siblings = [Op("cos", Any("x"))],
        };

        Assert.Equal(1, PatternRewriter.Rewrite(t.Graph, rule));

        GraphVerifier.Verify(t.Graph);
        Assert.Equal(["neg", "exp", "cos"], t.Graph.Nodes.Select(n => n.Op));
        Assert.Equal(["neg", "cos", "exp"], t.Graph.Outputs.Select(o => o.Producer!.Op));
        Assert.Same(y.Value, t.Graph.Outputs[1].Producer!.Inputs[0]);
    }

    [Fact]
    public void A_pattern_recognizes_a_value_without_rewriting_and_constants_take_predicates()
    {
        var (t, x) = NewGraph();
        var shifted = x - t.Scalar(-3, DType.F32);
        t.Output(shifted);
        var before = GraphPrinter.Print(t.Graph);
        var negativeShift = Op("sub", Any("x"), Constant("shift", v => v < 0));

        var captures = PatternMatcher.Match(negativeShift, shifted.Value);

        Assert.NotNull(captures);
        Assert.Same(x.Value, captures["x"]);
        Assert.Equal(-3, captures["shift"].Producer!.Float("value"));
        Assert.Null(PatternMatcher.Match(Op("sub", Any("x"), Constant("shift", v => v > 0)), shifted.Value));
        Assert.Equal(before, GraphPrinter.Print(t.Graph));
    }

    private static double ConstantValue(ModelGraph graph, Value value) =>
        graph.Nodes.Single(n => n.Outputs.Contains(value)).Float("value");
}
