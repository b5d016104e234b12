using Kiln.Graph;
using Kiln.Ops;
using Kiln.Weights;

namespace Kiln.Tests.Graph;

/// <summary>kiln_linear's type inference: float32 x, weights all f32, all f16 or all bf16, float32 out.</summary>
public sealed class KilnLinearOpTests
{
    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void Float32_x_with_weights_of_one_float_type_gives_float32(DType weights)
    {
        var (graph, x) = Graph();
        var a = graph.AddParameter("a", weights, [4, 8], LoadRecipe.FromSource("a"));
        var b = graph.AddParameter("b", weights, [3, 8], LoadRecipe.FromSource("b"));
        var node = graph.AddNode("kiln_linear", [x, a.Value, b.Value]);
        Assert.Equal(new TensorType(DType.F32, new Shape([Dim.Of(2), Dim.Of(7)])), node.Output.Type);
    }

    [Fact]
    public void The_kernel_ops_are_registered_with_their_backend_not_among_the_core_ops()
    {
        foreach (var op in Kiln.Kernels.KernelOps.All().Select(o => o.Name))
        {
            Assert.False(OpRegistry.Core.Contains(op), op);
            Assert.True(OpRegistry.Default.Contains(op), op);
        }
        Assert.Equal(["kiln_linear", "quantized_linear", "matmul_nbits", "all_reduce"], Kiln.Kernels.KernelOps.All().Select(o => o.Name));
    }

    [Theory]
    [InlineData(DType.F32, DType.F32, DType.BF16, "weights must all be f32, all f16 or all bf16")]
    [InlineData(DType.F32, DType.F64, DType.F64, "weights must all be f32, all f16 or all bf16")]
    [InlineData(DType.F32, DType.F16, DType.F32, "weights must all be f32, all f16 or all bf16")]
    [InlineData(DType.BF16, DType.BF16, DType.BF16, "x must be float32")]
    public void Other_types_are_refused(DType xType, DType first, DType second, string message)
    {
        var graph = new ModelGraph(OpRegistry.Default);
        var x = graph.AddInput("x", xType, new Shape([Dim.Of(2), Dim.Of(8)]));
        var a = graph.AddParameter("a", first, [4, 8], LoadRecipe.FromSource("a"));
        var b = graph.AddParameter("b", second, [3, 8], LoadRecipe.FromSource("b"));
        var error = Assert.Throws<GraphException>(() => graph.AddNode("kiln_linear", [x, a.Value, b.Value]));
        Assert.Contains(message, error.Message);
    }

    private static (ModelGraph Graph, Value X) Graph()
    {
        var graph = new ModelGraph(OpRegistry.Default);
        return (graph, graph.AddInput("x", DType.F32, new Shape([Dim.Of(2), Dim.Of(8)])));
    }
}
