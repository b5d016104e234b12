using CsCheck;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Tests.Graph;

/// <summary>
/// Random sequences of graph edits, valid ones and ones the graph must refuse, leave every value's
/// users, producer and graph-output flag equal to what the node list says, recomputed from scratch.
/// Every value has one type, f32 [4, 8], so any value can take any other's place.
/// </summary>
public sealed class GraphEditPropertyTests
{
    private static readonly string[] Unary = ["neg", "cos", "exp"];
    private static readonly string[] Binary = ["add", "mul"];

    private static readonly string[] Edits =
        ["append", "insert before", "insert after", "replace uses", "replace input", "erase", "erase dead", "add output", "add parameter", "remove parameter", "replace node"];

    [Fact]
    public void Users_always_match_the_node_list()
    {
        var edit = Gen.Select(Gen.Int[0, Edits.Length - 1], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue]);
        edit.Array[1, 60].Sample(edits =>
        {
            var graph = new ModelGraph(OpRegistry.Core);
            graph.AddInput("x", DType.F32, Shape.Of(4, 8));
            graph.AddInput("y", DType.F32, Shape.Of(4, 8));
            var gone = new List<Value>();
            foreach (var (kind, a, b) in edits)
            {
                Apply(graph, Edits[kind], a, b, gone);
                AssertUsersMatch(graph, gone);
            }
            GraphVerifier.Verify(graph);
            // A graph read back from its JSON form has the same users.
            AssertUsersMatch(GraphSerializer.Copy(graph), []);
        }, iter: 400, print: edits => string.Join("; ", edits.Select(e => $"{Edits[e.Item1]} {e.Item2} {e.Item3}")));
    }

    // One edit that keeps the node order valid; an erase or removal of something used must be refused.
    private static void Apply(ModelGraph graph, string edit, int a, int b, List<Value> gone)
    {
        var nodes = graph.Nodes;
        var at = nodes.Count == 0 ? 0 : a % nodes.Count;
        switch (edit)
        {
            case "append":
                graph.AddNode(Op(a), Inputs(DefinedBefore(graph, nodes.Count), a, b));
                break;
            case "insert before" when nodes.Count > 0:
                graph.InsertBefore(nodes[at], graph.CreateNode(Op(a), Inputs(DefinedBefore(graph, at), a, b)));
                break;
            case "insert after" when nodes.Count > 0:
                graph.InsertAfter(nodes[at], graph.CreateNode(Op(a), Inputs(DefinedBefore(graph, at + 1), a, b)));
                break;
            case "replace uses" when nodes.Count > 0:
                // With a value defined before the node, so that every reader still follows it.
                graph.ReplaceUses(nodes[at].Output, Pick(DefinedBefore(graph, at), b));
                break;
            case "replace input" when nodes.Count > 0 && nodes[at].Inputs.Count > 0:
                nodes[at].ReplaceInput(b % nodes[at].Inputs.Count, Pick(DefinedBefore(graph, at), b / 7));
                break;
            case "erase" when nodes.Count > 0:
                var node = nodes[at];
                if (node.Output.IsUsed)
                {
                    Assert.Throws<GraphException>(() => graph.EraseNode(node));
                    break;
                }
                graph.EraseNode(node);
                gone.Add(node.Output);
                break;
            case "erase dead":
                var dead = GraphAnalysis.DeadNodes(graph);
                graph.EraseNodes(dead);
                gone.AddRange(dead.Select(n => n.Output));
                break;
            case "add output":
                graph.Outputs.Add(Pick(DefinedBefore(graph, nodes.Count), b));
                break;
            case "add parameter":
                // Named apart from every parameter added before, removed ones included.
                var name = $"w{graph.Parameters.Count + gone.Count(v => v.Kind == ValueKind.Parameter)}";
                graph.InsertParameter(b % (graph.Parameters.Count + 1), name, DType.F32, [4, 8], LoadRecipe.FromSource(name));
                break;
            case "remove parameter" when graph.Parameters.Count > 0:
                var parameter = graph.Parameters[b % graph.Parameters.Count];
                if (parameter.Value.IsUsed)
                {
                    Assert.Throws<GraphException>(() => graph.RemoveParameter(parameter));
                    break;
                }
                graph.RemoveParameter(parameter);
                gone.Add(parameter.Value);
                break;
            case "replace node" when nodes.Count > 0 && nodes[at].Inputs.Count == 1:
                graph.ReplaceNode(nodes[at], Unary[b % Unary.Length], nodes[at].Inputs);
                break;
        }
    }

    private static string Op(int seed) => seed % 3 == 0 ? Binary[seed / 3 % Binary.Length] : Unary[seed % Unary.Length];

    // The inputs for op(seed): one or two values, possibly the same one twice.
    private static Value[] Inputs(List<Value> defined, int seed, int pick) =>
        seed % 3 == 0 ? [Pick(defined, pick), Pick(defined, pick / 5)] : [Pick(defined, pick)];

    private static Value Pick(List<Value> values, int pick) => values[pick % values.Count];

    // Inputs, parameters and the outputs of the first `count` nodes.
    private static List<Value> DefinedBefore(ModelGraph graph, int count) =>
        [.. graph.Inputs, .. graph.Parameters.Select(p => p.Value), .. graph.Nodes.Take(count).Select(n => n.Output)];

    private static void AssertUsersMatch(ModelGraph graph, List<Value> gone)
    {
        foreach (var value in DefinedBefore(graph, graph.Nodes.Count))
        {
            var readers = graph.Nodes.Where(n => n.Inputs.Contains(value)).ToList();
            Assert.Equal(readers.Count, value.Users.Count);
            Assert.All(readers, reader => Assert.Contains(reader, value.Users));
            Assert.Equal(graph.Outputs.Contains(value), value.IsGraphOutput);
            Assert.True(value.IsInGraph);
        }
        foreach (var node in graph.Nodes)
        {
            Assert.True(node.IsInGraph);
            Assert.Same(node, node.Output.Producer);
        }
        foreach (var value in gone)
        {
            Assert.False(value.IsInGraph);
            Assert.False(value.IsUsed);
        }
    }
}
