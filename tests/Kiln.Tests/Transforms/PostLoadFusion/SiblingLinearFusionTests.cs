using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;
using Kiln.Transforms.PostLoadFusion;
using Kiln.Weights;

namespace Kiln.Tests.Transforms.PostLoadFusion;

/// <summary>fuse_qkv_projections and fuse_gate_up_projections on small hand-traced graphs: recipes, shapes, what is left.</summary>
public sealed class SiblingLinearFusionTests
{
    private const int Hidden = 16;
    private static readonly Dim Batch = Dim.Sym("batch"), Seq = Dim.Sym("seq");

    private static int Apply(ITransform transform, ModelGraph graph) => TransformRuns.ApplyClean(transform, graph);

    // q [16, 16], k and v [8, 16] of one layer over x, each an output of the graph; the recipes get `steps`.
    private static (Tensor Q, Tensor K, Tensor V) Attention(Tracer t, Tensor x, int layer, bool bias, params RecipeStep[] steps)
    {
        var prefix = $"model.layers.{layer}.self_attn";
        Tensor Projection(string name, int width)
        {
            List<Tensor> inputs = [x, t.Parameter($"{prefix}.{name}.weight", width, Hidden)];
            if (bias) inputs.Add(t.Parameter($"{prefix}.{name}.bias", width));
            return t.Op("linear", [.. inputs]);
        }
        var projections = (Projection("q_proj", 16), Projection("k_proj", 8), Projection("v_proj", 8));
        foreach (var parameter in t.Graph.Parameters.Where(p => p.Name.StartsWith(prefix, StringComparison.Ordinal)))
        {
            parameter.Recipe = steps.Aggregate(parameter.Recipe, (recipe, step) => recipe.Then(step));
        }
        return projections;
    }

    private static ParameterSpec Parameter(ModelGraph graph, string name) => graph.Parameters.Single(p => p.Name == name);

    private static string[] Sources(string prefix, params string[] members) => members.Select(m => $"{prefix}.{m}").ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Qkv_becomes_one_linear_over_a_concatenated_parameter_and_one_split(bool bias)
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, Hidden);
        var (q, k, v) = Attention(t, x, 0, bias, new CastStep(DType.F32));
        t.Output(q);
        t.Output(k);
        t.Output(v);
        var graph = t.Graph;

        Assert.Equal(1, Apply(new FuseQkvProjectionsTransform(), graph));

        const string prefix = "model.layers.0.self_attn";
        var linear = Assert.Single(graph.Nodes, n => n.Op == "linear");
        Assert.Same(x.Value, linear.Inputs[0]);
        var weight = Parameter(graph, $"{prefix}.qkv_proj.weight");
        Assert.Same(weight.Value, linear.Inputs[1]);
        Assert.Equal([32L, Hidden], weight.Value.Shape.ToSizes());
        Assert.Equal(Sources(prefix, "q_proj.weight", "k_proj.weight", "v_proj.weight"), weight.Recipe.Sources);
        Assert.Equal([new CastStep(DType.F32), new ConcatStep(0)], weight.Recipe.Steps);
        if (bias)
        {
            var fusedBias = Parameter(graph, $"{prefix}.qkv_proj.bias");
            Assert.Same(fusedBias.Value, linear.Inputs[2]);
            Assert.Equal([32L], fusedBias.Value.Shape.ToSizes());
            Assert.Equal(Sources(prefix, "q_proj.bias", "k_proj.bias", "v_proj.bias"), fusedBias.Recipe.Sources);
            Assert.Equal([new CastStep(DType.F32), new ConcatStep(0)], fusedBias.Recipe.Steps);
        }
        else Assert.Equal(2, linear.Inputs.Count);

        // The graph's outputs (the old readers) now read q, k and v as the pieces of one split of the last axis.
        var split = Assert.Single(graph.Nodes, n => n.Op == "split");
        Assert.Same(linear.Output, split.Inputs[0]);
        Assert.Equal(-1, split.Int("axis"));
        Assert.Equal([16L, 8, 8], split.Ints("sizes"));
        Assert.Equal(split.Outputs, graph.Outputs);
        Assert.Equal([q.Value.Type, k.Value.Type, v.Value.Type], graph.Outputs.Select(o => o.Type));

        // Nothing reads the old parameters: they are gone.
        Assert.Equal((bias ? ["qkv_proj.weight", "qkv_proj.bias"] : new[] { "qkv_proj.weight" }).Select(n => $"{prefix}.{n}"), graph.Parameters.Select(p => p.Name));
    }

    [Fact]
    public void A_layer_whose_recipes_differ_is_left_alone_and_not_counted()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, Hidden);
        var (q0, k0, v0) = Attention(t, x, 0, bias: false);
        var (q1, k1, v1) = Attention(t, x, 1, bias: false);
        t.Output(q0 + q1);
        t.Output(k0 + k1);
        t.Output(v0 + v1);
        Parameter(t.Graph, "model.layers.1.self_attn.k_proj.weight").Recipe = new LoadRecipe(["model.layers.1.self_attn.k_proj.weight"], [new CastStep(DType.F32)]);

        Assert.Equal(1, Apply(new FuseQkvProjectionsTransform(), t.Graph));

        var weights = t.Graph.Nodes.Where(n => n.Op == "linear").Select(n => n.Inputs[1].Name).ToList();
        Assert.Equal(["model.layers.0.self_attn.qkv_proj.weight", .. Sources("model.layers.1.self_attn", "q_proj.weight", "k_proj.weight", "v_proj.weight")], weights);
    }

    [Fact]
    public void Projections_over_different_inputs_or_with_biases_on_some_are_left_alone()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, Hidden);
        var y = t.Input("y", DType.F32, Batch, Seq, Hidden);
        const string prefix = "model.layers.0.self_attn";
        // v reads another input than q and k.
        t.Output(t.Op("linear", [x, t.Parameter($"{prefix}.q_proj.weight", 16, Hidden)]));
        t.Output(t.Op("linear", [x, t.Parameter($"{prefix}.k_proj.weight", 8, Hidden)]));
        t.Output(t.Op("linear", [y, t.Parameter($"{prefix}.v_proj.weight", 8, Hidden)]));
        // Only q has a bias.
        const string other = "model.layers.1.self_attn";
        t.Output(t.Op("linear", [x, t.Parameter($"{other}.q_proj.weight", 16, Hidden), t.Parameter($"{other}.q_proj.bias", 16)]));
        t.Output(t.Op("linear", [x, t.Parameter($"{other}.k_proj.weight", 8, Hidden)]));
        t.Output(t.Op("linear", [x, t.Parameter($"{other}.v_proj.weight", 8, Hidden)]));
        var before = t.Graph.Nodes.Count;

        Assert.Equal(0, Apply(new FuseQkvProjectionsTransform(), t.Graph));
        Assert.Equal(before, t.Graph.Nodes.Count);
        Assert.Equal(7, t.Graph.Parameters.Count);
    }

    [Fact]
    public void A_parameter_still_read_elsewhere_stays()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, Hidden);
        const string prefix = "model.layers.0.self_attn";
        var qWeight = t.Parameter($"{prefix}.q_proj.weight", 16, Hidden);
        t.Output(t.Op("linear", [x, qWeight]));
        t.Output(t.Op("linear", [x, t.Parameter($"{prefix}.k_proj.weight", 8, Hidden)]));
        t.Output(t.Op("linear", [x, t.Parameter($"{prefix}.v_proj.weight", 8, Hidden)]));
        t.Output(t.Op("linear", [t.Input("y", DType.F32, Batch, Seq, Hidden), qWeight]));

        Assert.Equal(1, Apply(new FuseQkvProjectionsTransform(), t.Graph));
        Assert.Equal([$"{prefix}.qkv_proj.weight", $"{prefix}.q_proj.weight"], t.Graph.Parameters.Select(p => p.Name));
    }

    [Fact]
    public void Gate_and_up_become_one_linear_and_a_split_that_feeds_swiglu()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, Hidden);
        const string prefix = "model.layers.0.mlp";
        var gate = t.Op("linear", [x, t.Parameter($"{prefix}.gate_proj.weight", 24, Hidden)]);
        var up = t.Op("linear", [x, t.Parameter($"{prefix}.up_proj.weight", 24, Hidden)]);
        t.Output(t.Op("linear", [t.Op("swiglu", [gate, up]), t.Parameter($"{prefix}.down_proj.weight", Hidden, 24)]));
        var graph = t.Graph;

        Assert.Equal(1, Apply(new FuseGateUpProjectionsTransform(), graph));

        Assert.Equal(["linear", "split", "swiglu", "linear"], graph.Nodes.Select(n => n.Op));
        var weight = Parameter(graph, $"{prefix}.gate_up_proj.weight");
        Assert.Equal([48L, Hidden], weight.Value.Shape.ToSizes());
        Assert.Equal(Sources(prefix, "gate_proj.weight", "up_proj.weight"), weight.Recipe.Sources);
        Assert.Equal([new ConcatStep(0)], weight.Recipe.Steps);
        var swiglu = graph.Nodes.Single(n => n.Op == "swiglu");
        var split = graph.Nodes.Single(n => n.Op == "split");
        Assert.Equal([24L, 24], split.Ints("sizes"));
        Assert.Equal(split.Outputs, swiglu.Inputs);
        Assert.Equal([$"{prefix}.gate_up_proj.weight", $"{prefix}.down_proj.weight"], graph.Parameters.Select(p => p.Name));
    }
}
