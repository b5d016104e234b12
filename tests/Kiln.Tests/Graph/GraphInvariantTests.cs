using Kiln.Graph;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Tests.Graph;

/// <summary>
/// Edits that would break the IR are refused by the call that tries them, with a GraphException, and
/// leave the graph as it was: the verifier is not the first to notice.
/// </summary>
public sealed class GraphInvariantTests
{
    private readonly ModelGraph _graph = new(OpRegistry.Core);
    private readonly Value _x;
    private readonly ParameterSpec _w;
    private readonly Node _neg, _scaled, _cos;

    // cos(neg(x) * w), the graph's output.
    public GraphInvariantTests()
    {
        _x = _graph.AddInput("x", DType.F32, Shape.Of(4, 8));
        _w = _graph.AddParameter("w", DType.F32, [4, 8], LoadRecipe.FromSource("w"));
        _neg = _graph.AddNode("neg", [_x]);
        _scaled = _graph.AddNode("mul", [_neg.Output, _w.Value]);
        _cos = _graph.AddNode("cos", [_scaled.Output]);
        _graph.Outputs.Add(_cos.Output);
    }

    [Fact]
    public void Erasing_a_node_whose_output_is_read_is_refused()
    {
        var error = Refused(() => _graph.EraseNode(_neg));
        Assert.Contains("is read by", error.Message);
        // Nor a set, while a node outside it reads one of them.
        Refused(() => _graph.EraseNodes([_neg, _scaled]));
    }

    [Fact]
    public void Erasing_the_producer_of_a_graph_output_is_refused()
    {
        var error = Refused(() => _graph.EraseNode(_cos));
        Assert.Contains("graph output", error.Message);
    }

    [Fact]
    public void A_value_that_left_the_graph_cannot_be_read()
    {
        var exp = _graph.AddNode("exp", [_x]);
        _graph.EraseNode(exp);
        var spare = _graph.AddParameter("spare", DType.F32, [4, 8], LoadRecipe.FromSource("spare"));
        _graph.RemoveParameter(spare);

        foreach (var gone in new[] { exp.Output, spare.Value })
        {
            var error = Refused(() => _graph.AddNode("neg", [gone]));
            Assert.Contains("is not in the graph", error.Message);
            Refused(() => _graph.CreateNode("neg", [gone]));
            Refused(() => _cos.ReplaceInput(0, gone));
            Refused(() => _graph.ReplaceUses(_scaled.Output, gone));
            Refused(() => _graph.Outputs.Add(gone));
        }
    }

    [Fact]
    public void The_output_of_a_node_not_yet_placed_cannot_be_read()
    {
        var pending = _graph.CreateNode("exp", [_x]);
        Refused(() => _graph.AddNode("neg", [pending.Output]));
        Refused(() => _graph.ReplaceUses(_scaled.Output, pending.Output));
    }

    [Fact]
    public void A_value_of_another_graph_cannot_be_read()
    {
        var other = new ModelGraph(OpRegistry.Core);
        var foreign = other.AddInput("x", DType.F32, Shape.Of(4, 8));

        var error = Refused(() => _graph.AddNode("neg", [foreign]));
        Assert.Contains("another graph", error.Message);
        Refused(() => _cos.ReplaceInput(0, foreign));
        Refused(() => _graph.ReplaceUses(_scaled.Output, foreign));
        Refused(() => _graph.Outputs.Add(foreign));
        Refused(() => _graph.InsertBefore(_cos, other.CreateNode("neg", [foreign])));
    }

    [Fact]
    public void Removing_a_parameter_input_or_buffer_still_used_is_refused()
    {
        var error = Refused(() => _graph.RemoveParameter(_w));
        Assert.Contains("is read by", error.Message);
        Refused(() => _graph.RemoveInput(_x));

        var buffer = _graph.AddBuffer("table", DType.F32, [4, 8], new byte[128]);
        _graph.AddNode("add", [_x, buffer.Value]);
        Refused(() => _graph.RemoveBuffer(buffer));

        var returned = _graph.AddParameter("returned", DType.F32, [4, 8], LoadRecipe.FromSource("returned"));
        _graph.Outputs.Add(returned.Value);
        error = Refused(() => _graph.RemoveParameter(returned));
        Assert.Contains("graph output", error.Message);
    }

    [Fact]
    public void A_name_in_use_cannot_be_given_again()
    {
        var error = Refused(() => _graph.AddInput(_neg.Output.Name, DType.F32, Shape.Scalar));
        Assert.Contains("used twice", error.Message);
        Refused(() => _graph.AddParameter("x", DType.F32, [4], LoadRecipe.FromSource("x")));
        Refused(() => _graph.AddBuffer("w", DType.F32, [1], new byte[4]));
        Refused(() => _graph.CreateNode("neg", [_x], outputNames: ["w"]));
    }

    [Fact]
    public void A_node_is_placed_once()
    {
        Refused(() => _graph.InsertAfter(_cos, _neg));
        var exp = _graph.AddNode("exp", [_x]);
        _graph.EraseNode(exp);

        var error = Refused(() => _graph.InsertAfter(_cos, exp));
        Assert.Contains("was erased", error.Message);
        // An erased node is no anchor either.
        Refused(() => _graph.InsertBefore(exp, _graph.CreateNode("sin", [_x])));
    }

    [Fact]
    public void A_value_of_another_type_cannot_take_a_value_s_place()
    {
        var one = _graph.AddNode("constant", [], new Dictionary<string, AttributeValue> { ["value"] = 1.0, ["dtype"] = "f32" }).Output;

        Refused(() => _cos.ReplaceInput(0, one));
        Refused(() => _graph.ReplaceUses(_scaled.Output, one));
        Refused(() => _graph.ReplaceNode(_neg, "constant", [], new Dictionary<string, AttributeValue> { ["value"] = 1.0, ["dtype"] = "f32" }));
    }

    // The call throws at once, and leaves the graph as it was and whole.
    private GraphException Refused(Action edit)
    {
        var before = GraphPrinter.Print(_graph);
        var error = Assert.Throws<GraphException>(edit);
        Assert.Equal(before, GraphPrinter.Print(_graph));
        GraphVerifier.Verify(_graph);
        return error;
    }
}
