using Kiln.Graph;

namespace Kiln.Tests.Transforms.Cleanups;

public sealed class EliminateDeadCodeTests
{
    [Fact]
    public void Removes_unreachable_nodes_and_the_parameters_and_buffers_only_they_read()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 2, 3);
        var unusedInput = t.Input("unused_input", DType.F32, 3);
        var weight = t.Parameter("weight", 3);
        var deadWeight = t.Parameter("dead_weight", 3);
        t.Parameter("never_read", 3);
        var scale = t.Buffer("scale", [1f, 2f, 3f]);
        var deadBuffer = t.Buffer("dead_buffer", [4f, 5f, 6f]);

        var live = x * weight * scale;
        var dead = -(x + deadWeight * deadBuffer);
        t.Output(live);

        var graph = t.Graph;
        // Three nodes, two parameters, one buffer.
        Assert.Equal(6, Cleanup.Apply("eliminate_dead_code", graph));

        Assert.Equal(["mul", "mul"], Cleanup.Ops(graph));
        Assert.DoesNotContain(graph.Nodes, n => n.Outputs.Contains(dead.Value));
        Assert.Equal(["weight"], graph.Parameters.Select(p => p.Name));
        Assert.Equal(["scale"], graph.Buffers.Select(b => b.Name));
        Assert.Equal([x.Value, unusedInput.Value], graph.Inputs);
        Assert.Same(live.Value, Assert.Single(graph.Outputs));
    }

    [Fact]
    public void Keeps_a_clean_graph_unchanged()
    {
        var t = Cleanup.NewTracer();
        var x = t.Input("x", DType.F32, 3);
        var weight = t.Parameter("weight", 3);
        t.Output(x * weight);
        var before = GraphPrinter.Print(t.Graph);

        Assert.Equal(0, Cleanup.Apply("eliminate_dead_code", t.Graph));
        Assert.Equal(before, GraphPrinter.Print(t.Graph));
    }

    [Fact]
    public void Keeps_a_parameter_that_is_itself_a_graph_output()
    {
        var t = Cleanup.NewTracer();
        var weight = t.Parameter("weight", 3);
        t.Output(weight);

        Assert.Equal(0, Cleanup.Apply("eliminate_dead_code", t.Graph));
        Assert.Equal(["weight"], t.Graph.Parameters.Select(p => p.Name));
    }
}
