using Kiln.Graph;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Tests.Graph;

/// <summary>Each value's producer and users follow the graph's edits.</summary>
public sealed class GraphEditTests
{
    private static (ModelGraph Graph, Value X) NewGraph()
    {
        var graph = new ModelGraph(OpRegistry.Core);
        return (graph, graph.AddInput("x", DType.F32, Shape.Of(Dim.Sym("batch"), 8)));
    }

    private static Dictionary<string, AttributeValue> Constant(double value) => new() { ["value"] = value, ["dtype"] = "f32" };

    [Fact]
    public void Added_nodes_are_the_producers_and_users_of_their_values()
    {
        var (graph, x) = NewGraph();
        var neg = graph.AddNode("neg", [x]);
        var sum = graph.AddNode("add", [x, neg.Output]);
        var square = graph.AddNode("mul", [sum.Output, sum.Output]);
        graph.Outputs.Add(square.Output);

        Assert.Null(x.Producer);
        Assert.Same(neg, neg.Output.Producer);
        Assert.Equal([neg, sum], x.Users);
        // Read twice, listed once.
        Assert.Equal([square], sum.Output.Users);
        Assert.True(square.Output.IsGraphOutput);
        Assert.Empty(square.Output.Users);
        Assert.True(square.Output.IsUsed);
        Assert.False(sum.Output.IsGraphOutput);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void A_created_node_reads_its_inputs_once_it_is_placed()
    {
        var (graph, x) = NewGraph();
        var cos = graph.AddNode("cos", [x]);
        graph.Outputs.Add(cos.Output);

        var exp = graph.CreateNode("exp", [x]);
        Assert.Equal([cos], x.Users);
        Assert.Same(exp, exp.Output.Producer);
        Assert.False(exp.IsInGraph);
        Assert.False(exp.Output.IsInGraph);

        graph.InsertBefore(cos, exp);
        var sin = graph.CreateNode("sin", [exp.Output]);
        graph.InsertAfter(exp, sin);

        Assert.Equal([exp, sin, cos], graph.Nodes);
        Assert.Equal([cos, exp], x.Users);
        Assert.Equal([sin], exp.Output.Users);
        Assert.True(exp.Output.IsInGraph);
    }

    [Fact]
    public void ReplaceUses_moves_every_reader_and_graph_output_to_the_new_value()
    {
        var (graph, x) = NewGraph();
        var neg = graph.AddNode("neg", [x]);
        var cos = graph.AddNode("cos", [neg.Output]);
        var square = graph.AddNode("mul", [neg.Output, neg.Output]);
        graph.Outputs.Add(neg.Output);
        graph.Outputs.Add(square.Output);
        var exp = graph.CreateNode("exp", [x]);
        graph.InsertAfter(neg, exp);

        graph.ReplaceUses(neg.Output, exp.Output);

        Assert.False(neg.Output.IsUsed);
        Assert.Equal([cos, square], exp.Output.Users);
        Assert.Equal([exp.Output, exp.Output], square.Inputs);
        Assert.Equal([exp.Output, square.Output], graph.Outputs);
        Assert.True(exp.Output.IsGraphOutput);
        Assert.False(neg.Output.IsGraphOutput);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void ReplaceUses_leaves_the_replacement_reading_the_value_it_replaces()
    {
        var (graph, x) = NewGraph();
        var neg = graph.AddNode("neg", [x]);
        var cos = graph.AddNode("cos", [neg.Output]);
        graph.Outputs.Add(cos.Output);
        var cast = graph.CreateNode("cast", [neg.Output], new Dictionary<string, AttributeValue> { ["to"] = "f32" });
        graph.InsertAfter(neg, cast);

        graph.ReplaceUses(neg.Output, cast.Output);

        Assert.Equal([cast], neg.Output.Users);
        Assert.Equal([cos], cast.Output.Users);
        Assert.Same(neg.Output, cast.Inputs[0]);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void ReplaceInput_updates_the_users_of_both_values()
    {
        var (graph, x) = NewGraph();
        var y = graph.AddInput("y", DType.F32, x.Shape);
        var square = graph.AddNode("mul", [x, x]);
        graph.Outputs.Add(square.Output);

        square.ReplaceInput(0, y);
        // It still reads x as its second input.
        Assert.Equal([square], x.Users);
        Assert.Equal([square], y.Users);

        square.ReplaceInput(1, y);
        Assert.Empty(x.Users);
        Assert.Equal([square], y.Users);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void Erased_nodes_stop_reading_their_inputs_and_give_up_their_names()
    {
        var (graph, x) = NewGraph();
        var neg = graph.AddNode("neg", [x], nameHint: "negated");
        var cos = graph.AddNode("cos", [neg.Output]);
        var exp = graph.AddNode("exp", [x]);
        graph.Outputs.Add(exp.Output);

        // Any order: each node's outputs are read only inside the set.
        graph.EraseNodes([neg, cos]);

        Assert.Equal([exp], graph.Nodes);
        Assert.Equal([exp], x.Users);
        Assert.Empty(neg.Output.Users);
        Assert.False(neg.IsInGraph);
        Assert.False(neg.Output.IsInGraph);
        // As in the graph read back from its JSON form, the names are free again.
        graph.AddInput(neg.Output.Name, DType.F32, Shape.Scalar);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void ReplaceNode_gives_the_same_values_another_producer()
    {
        var (graph, x) = NewGraph();
        var two = graph.AddNode("constant", [], Constant(2));
        var three = graph.AddNode("constant", [], Constant(3));
        var sum = graph.AddNode("add", [two.Output, three.Output]);
        var scaled = graph.AddNode("mul", [x, sum.Output]);
        graph.Outputs.Add(scaled.Output);

        var five = graph.ReplaceNode(sum, "constant", [], Constant(5));

        Assert.Same(five, sum.Output.Producer);
        Assert.Equal([two, three, five, scaled], graph.Nodes);
        Assert.Equal([scaled], sum.Output.Users);
        Assert.Empty(two.Output.Users);
        Assert.False(sum.IsInGraph);
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void Parameters_are_inserted_where_asked_and_removal_frees_the_name()
    {
        var (graph, x) = NewGraph();
        var first = graph.AddParameter("first", DType.F32, [8], LoadRecipe.FromSource("first"));
        var last = graph.AddParameter("last", DType.F32, [8], LoadRecipe.FromSource("last"));
        var middle = graph.InsertParameter(1, "middle", DType.F32, [8], LoadRecipe.FromSource("middle"));
        Assert.Equal([first, middle, last], graph.Parameters);

        graph.RemoveParameter(middle);

        Assert.Equal([first, last], graph.Parameters);
        Assert.False(middle.Value.IsInGraph);
        var again = graph.InsertParameter(0, "middle", DType.F32, [8], LoadRecipe.FromSource("middle"));
        Assert.Equal([again, first, last], graph.Parameters);
    }

    [Fact]
    public void Unread_inputs_and_buffers_can_be_removed()
    {
        var (graph, x) = NewGraph();
        var spare = graph.AddInput("spare", DType.F32, Shape.Scalar);
        var buffer = graph.AddBuffer("table", DType.F32, [2], new byte[8]);

        graph.RemoveInput(spare);
        graph.RemoveBuffer(buffer);

        Assert.Equal([x], graph.Inputs);
        Assert.Empty(graph.Buffers);
        graph.AddBuffer("spare", DType.F32, [2], new byte[8]);
    }

    [Fact]
    public void Sorting_moves_a_node_before_its_first_reader()
    {
        var (graph, x) = NewGraph();
        var neg = graph.AddNode("neg", [x]);
        var cos = graph.AddNode("cos", [neg.Output]);
        graph.Outputs.Add(cos.Output);
        var exp = graph.CreateNode("exp", [x]);
        graph.InsertAfter(cos, exp);
        cos.ReplaceInput(0, exp.Output);
        Assert.Throws<GraphException>(() => GraphVerifier.Verify(graph));

        graph.SortTopologically();

        Assert.Equal([neg, exp, cos], graph.Nodes);
        GraphVerifier.Verify(graph);
    }
}
