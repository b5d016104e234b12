using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Transforms.PostLoadFusion;

/// <summary>quantize_weights through the default pipeline on real checkpoints: what it rewrites, the recipes it writes, what it refuses.</summary>
public sealed class QuantizeWeightsTransformTests
{
    // With use_matmul_nbits off, which would move the int4_sym products on to ONNX Runtime's MatMulNBits (UseMatMulNBitsTests).
    private static ModelGraph Compile(string model, params string[] sets)
    {
        using var checkpoint = Checkpoint.Open(model);
        return ModelCompiler.Compile(checkpoint, PipelineConfig.Load(null, [.. sets, "use_matmul_nbits.enabled=false"])).Graph;
    }

    private static int Count(ModelGraph graph, string op) => graph.Nodes.Count(n => n.Op == op);

    private static ParameterSpec Parameter(ModelGraph graph, string name) => graph.Parameters.Single(p => p.Name == name);

    [Fact]
    public void By_default_nothing_is_quantized()
    {
        var graph = Compile(TestPaths.DefaultModel);
        Assert.Equal(0, Count(graph, "quantized_linear"));
        Assert.DoesNotContain(graph.Parameters, p => p.Value.DType == DType.U8);
    }

    [Theory]
    [InlineData("int8", QuantScheme.Int8)]
    [InlineData("int4_sym", QuantScheme.Int4Sym)]
    [InlineData("int4", QuantScheme.Int4)]
    public void Every_projection_and_the_tied_output_layer_become_quantized_products(string name, QuantScheme scheme)
    {
        var graph = Compile(TestPaths.DefaultModel, $"quantize_weights.scheme={name}");

        // 5 layers × (qkv, o, gate_up, down) + the output layer; none left for kiln_linear.
        Assert.Equal(21, Count(graph, "quantized_linear"));
        Assert.Equal(0, Count(graph, "kiln_linear") + Count(graph, "linear"));
        Assert.All(graph.Nodes.Where(n => n.Op == "quantized_linear"), n => Assert.Equal(name, n.String("scheme")));

        // down_proj has k = 172: six blocks, the last one padded.
        var down = Parameter(graph, "model.layers.0.mlp.down_proj.weight");
        Assert.Equal(DType.U8, down.Value.DType);
        Assert.Equal([64L, 6 * scheme.BlockBytes()], down.Value.Shape.ToSizes());
        Assert.Equal($"source(model.layers.0.mlp.down_proj.weight) |> quantize({name})", down.Recipe.ToString());
        var qkv = Parameter(graph, "model.layers.0.self_attn.qkv_proj.weight");
        Assert.Equal("source(model.layers.0.self_attn.q_proj.weight, model.layers.0.self_attn.k_proj.weight, model.layers.0.self_attn.v_proj.weight)" +
            $" |> concat(dim=0) |> quantize({name})", qkv.Recipe.ToString());

        // The embedding table is tied to the output layer: the gather keeps the float table, the product reads a packed copy.
        Assert.Equal(DType.F32, Parameter(graph, "model.embed_tokens.weight").Value.DType);
        var head = Parameter(graph, $"model.embed_tokens.weight.{name}");
        Assert.Equal([512L, 2 * scheme.BlockBytes()], head.Value.Shape.ToSizes());
        Assert.Contains(graph.Nodes, n => n.Op == "quantized_linear" && ReferenceEquals(n.Inputs[1], head.Value) && graph.Outputs.Contains(n.Output));
    }

    [Fact]
    public void The_output_layer_can_stay_float()
    {
        var graph = Compile(TestPaths.DefaultModel, "quantize_weights.scheme=int8", "quantize_weights.output_layer=false");
        Assert.Equal(20, Count(graph, "quantized_linear"));
        var head = Assert.Single(graph.Nodes, n => n.Op == "kiln_linear");
        Assert.Same(Parameter(graph, "model.embed_tokens.weight").Value, head.Inputs[1]);
        Assert.DoesNotContain(graph.Parameters, p => p.Name.StartsWith("model.embed_tokens.weight.", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bf16_checkpoint_is_quantized_from_its_own_values_without_a_float_copy()
    {
        using var temp = new TempDir();
        var model = FamilyModels.Directory("bf16", temp);
        var graph = Compile(model, "quantize_weights.scheme=int4");
        var qkv = Parameter(graph, "model.layers.1.self_attn.qkv_proj.weight");
        Assert.DoesNotContain(qkv.Recipe.Steps, s => s is CastStep);
        Assert.IsType<QuantizeStep>(qkv.Recipe.Steps[^1]);
        Assert.Equal(DType.U8, qkv.Value.DType);
    }

    [Fact]
    public void Biases_stay_float_and_are_added_after_the_product()
    {
        var graph = Compile(TestPaths.Oracle("qwen2"), "quantize_weights.scheme=int8");
        var bias = Parameter(graph, "model.layers.0.self_attn.qkv_proj.bias");
        Assert.Equal(DType.F32, bias.Value.DType);
        var add = Assert.Single(graph.Nodes, n => n.Op == "add" && n.Inputs.Contains(bias.Value));
        Assert.Equal("quantized_linear", graph.Nodes.Single(n => n.Outputs.Contains(add.Inputs[0])).Op);
    }

    [Fact]
    public void An_unknown_scheme_is_refused_naming_the_setting()
    {
        var error = Assert.Throws<KilnException>(() => Compile(TestPaths.DefaultModel, "quantize_weights.scheme=int3"));
        Assert.Equal("quantize_weights.scheme: 'int3' is not one of none, int8, int4, int4_sym", error.Message);
    }

    [Fact]
    public void A_quantized_embedding_table_is_refused_rather_than_ignored()
    {
        var error = Assert.Throws<KilnException>(() => Compile(TestPaths.DefaultModel, "quantize_weights.scheme=int8", "quantize_weights.embedding=true"));
        Assert.StartsWith("quantize_weights.embedding: quantizing the embedding table is not supported", error.Message);
    }

    [Fact]
    public void Loading_reports_quantize_progress_up_to_every_weight_of_the_products()
    {
        var reports = new System.Collections.Concurrent.ConcurrentQueue<QuantizeProgress>();
        using var model = Kiln.Runtime.LoadedModel.Load(TestPaths.DefaultModel, pipeline: PipelineConfig.Load(null, ["quantize_weights.scheme=int8"]),
            progress: new Recorder(reports));
        // 5 × (qkv 128·64 + o 64·64 + gate_up 344·64 + down 64·172) + the output layer 512·64.
        const long total = 5 * (128 * 64 + 64 * 64 + 344 * 64 + 64 * 172) + 512 * 64;
        Assert.All(reports, r => Assert.Equal(total, r.Total));
        Assert.Equal(total, reports.Max(r => r.Done));
    }

    private sealed class Recorder(System.Collections.Concurrent.ConcurrentQueue<QuantizeProgress> reports) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => reports.Enqueue(value);
    }
}
