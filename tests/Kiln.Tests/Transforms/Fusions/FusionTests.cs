using Kiln.Compile;
using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;
using Kiln.Transforms;
using Kiln.Transforms.Fusions;

namespace Kiln.Tests.Transforms.Fusions;

/// <summary>Each fusion on a small hand-traced graph.</summary>
public sealed class FusionTests
{
    private static readonly Dim Batch = Dim.Sym("batch"), Seq = Dim.Sym("seq");

    private static int Apply(ITransform transform, ModelGraph graph) => TransformRuns.ApplyClean(transform, graph);

    private static string[] Ops(ModelGraph graph) => graph.Nodes.Select(n => n.Op).ToArray();

    // The rotary fusion sizes its cos/sin tables by the model's context length.
    private static ModelFacts ModelOfContext(int positions) => new("LlamaForCausalLM", "llama", VocabSize: 16, ContextLength: positions,
        Layers: 1, Hidden: 32, Heads: 4, KvHeads: 2, HeadDim: 8, BosTokenId: null, EosTokenIds: []);

    // LlamaRMSNorm as traced, with or without the fp32 casts.
    private static Tensor RmsNorm(Tracer t, Tensor x, Tensor weight, bool casts)
    {
        var h = casts ? x.Cast(DType.F32) : x;
        h = h * (h.Pow(2).Mean(-1, keepdim: true) + 1e-6).Rsqrt();
        return weight * (casts ? h.Cast(x.DType) : h);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rms_norm_fuses_with_and_without_casts(bool casts)
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, 64);
        t.Output(RmsNorm(t, x, t.Parameter("w", 64), casts));

        Assert.Equal(1, Apply(new FuseRmsNormTransform(), t.Graph));

        var norm = Assert.Single(t.Graph.Nodes);
        Assert.Equal("rms_norm", norm.Op);
        Assert.Equal(1e-6, norm.Float("epsilon"));
        Assert.Same(x.Value, norm.Inputs[0]);
    }

    [Fact]
    public void Rms_norm_fuses_per_head_on_rank_4()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, 4, 16);
        t.Output(RmsNorm(t, x, t.Parameter("w", 16), casts: true));

        Assert.Equal(1, Apply(new FuseRmsNormTransform(), t.Graph));
        Assert.Equal(["rms_norm"], Ops(t.Graph));
    }

    [Fact]
    public void Rms_norm_over_another_axis_does_not_fuse()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, 8, 64);
        var h = x * (x.Pow(2).Mean(0, keepdim: true) + 1e-6).Rsqrt();
        t.Output(t.Parameter("w", 64) * h);

        Assert.Equal(0, Apply(new FuseRmsNormTransform(), t.Graph));
    }

    [Fact]
    public void Swiglu_fuses_silu_and_its_sigmoid_form_in_either_order()
    {
        var t = new Tracer(OpRegistry.Default);
        var gate = t.Input("gate", DType.F32, Batch, 128);
        var up = t.Input("up", DType.F32, Batch, 128);
        t.Output(gate.Silu() * up);
        t.Output(up * (gate * t.Op("sigmoid", [gate])));

        Assert.Equal(2, Apply(new FuseSwiGluTransform(), t.Graph));
        Assert.Equal(["swiglu", "swiglu"], Ops(t.Graph));
        Assert.All(t.Graph.Nodes, n => Assert.Equal([gate.Value, up.Value], n.Inputs));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Skip_rms_norm_takes_the_residual_add(bool sumReadElsewhere)
    {
        var t = new Tracer(OpRegistry.Default);
        var a = t.Input("a", DType.F32, Batch, 64);
        var b = t.Input("b", DType.F32, Batch, 64);
        var sum = a + b;
        t.Output(t.Op("rms_norm", [sum, t.Parameter("w", 64)], new() { ["epsilon"] = 1e-5 }));
        if (sumReadElsewhere) t.Output(sum.Cos());

        Assert.Equal(1, Apply(new FuseSkipRmsNormTransform(), t.Graph));

        var fused = t.Graph.Nodes[0];
        Assert.Equal("skip_rms_norm", fused.Op);
        Assert.Equal(1e-5, fused.Float("epsilon"));
        Assert.Same(fused.Outputs[0], t.Graph.Outputs[0]);
        Assert.DoesNotContain(t.Graph.Nodes, n => n.Op is "add" or "rms_norm");
        if (sumReadElsewhere) Assert.Same(fused.Outputs[1], t.Graph.Nodes.Single(n => n.Op == "cos").Inputs[0]);
    }

    [Theory]
    [InlineData(2, false)] // grouped: repeat_kv, division by sqrt(d)
    [InlineData(4, true)] // one key/value head per query head, multiplication by 1/sqrt(d)
    public void Attention_fuses_and_reads_the_unrepeated_keys_and_values(int kvHeads, bool multiply)
    {
        var t = new Tracer(OpRegistry.Default);
        var q = t.Input("q", DType.F32, Batch, 4, Seq, 16);
        var k = t.Input("k", DType.F32, Batch, kvHeads, Seq, 16);
        var v = t.Input("v", DType.F32, Batch, kvHeads, Seq, 16);
        var mask = t.Input("mask", DType.F32, Batch, 1, Seq, Seq);
        Tensor RepeatKv(Tensor x) => kvHeads == 4 ? x : x.Unsqueeze(2).Expand(1, 1, 4 / kvHeads, 1, 1).View(0, 4, -1, 16);
        var scores = q.MatMul(RepeatKv(k).Transpose(2, 3));
        scores = multiply ? scores * 0.25 : scores / 4.0;
        t.Output((scores + mask).Softmax(-1).MatMul(RepeatKv(v)));

        Assert.Equal(1, Apply(new FuseAttentionTransform(), t.Graph));

        var attention = Assert.Single(t.Graph.Nodes);
        Assert.Equal("attention", attention.Op);
        Assert.Equal([q.Value, k.Value, v.Value, mask.Value], attention.Inputs);
        Assert.Equal(0.25, attention.Float("scale"));
    }

    [Fact]
    public void Rotary_embedding_fuses_every_use_with_one_pair_of_caches()
    {
        const int positions = 32;
        var t = new Tracer(OpRegistry.Default);
        var positionIds = t.Input("position_ids", DType.I64, Batch, Seq);
        var frequencies = new[] { 1f, 0.1f, 0.01f, 0.001f };
        var invFreq = t.Buffer("rotary_emb.inv_freq", frequencies);
        var freqs = positionIds.Cast(DType.F32).Unsqueeze(-1) * invFreq;
        var emb = Tensor.Cat(-1, freqs, freqs);
        var (cos, sin) = (emb.Cos(), emb.Sin());
        Tensor Rotate(Tensor x) => x * cos.Unsqueeze(1) + Tensor.Cat(-1, -x.Slice(-1, 4, long.MaxValue), x.Slice(-1, 0, 4)) * sin.Unsqueeze(1);
        var q = t.Input("q", DType.F32, Batch, 4, Seq, 8);
        var k = t.Input("k", DType.F32, Batch, 2, Seq, 8);
        t.Output(Rotate(q));
        t.Output(Rotate(k));
        t.Graph.Model = ModelOfContext(positions);

        Assert.Equal(2, Apply(new FuseRotaryEmbeddingTransform(), t.Graph));

        Assert.Equal(["rotary_table", "rotary_table", "rotary_embedding", "rotary_embedding"], Ops(t.Graph));
        var tables = t.Graph.Nodes.Where(n => n.Op == "rotary_table").ToDictionary(n => n.String("function"));
        Assert.Equal(["cos", "sin"], tables.Keys.Order());
        Assert.All(tables.Values, n => Assert.Equal((invFreq.Value, positions), (n.Inputs.Single(), n.Int("positions"))));
        Assert.All(t.Graph.Nodes.Where(n => n.Op == "rotary_embedding"),
            n => Assert.Equal([positionIds.Value, tables["cos"].Output, tables["sin"].Output], n.Inputs.Skip(1)));
        // The caches are computed, not stored: the only buffer left is inv_freq.
        Assert.Equal([invFreq.Value], t.Graph.Buffers.Select(b => b.Value));
    }

    [Fact]
    public void Rotary_table_computes_cos_and_sin_of_fp32_angles_on_onnx_runtime()
    {
        const int positions = 64;
        var frequencies = new[] { 1f, 0.1f, 0.01f, 0.001f };
        var t = new Tracer(OpRegistry.Default);
        var invFreq = t.Buffer("inv_freq", frequencies);
        foreach (var function in new[] { "cos", "sin" })
            t.Output(t.Op("rotary_table", [invFreq], new() { ["positions"] = (long)positions, ["function"] = function }));
        using var session = CompiledSession.Create(GraphLowering.ToOnnx(t.Graph), []);

        for (var o = 0; o < 2; o++)
        {
            var table = session.Run(new Dictionary<string, Int64Tensor>(), t.Graph.Outputs[o].Name);
            Assert.Equal([positions, 4L], table.Shape);
            for (var p = 0; p < positions; p++)
            {
                for (var i = 0; i < 4; i++)
                {
                    var angle = (float)p * frequencies[i];
                    Assert.Equal(o == 0 ? Math.Cos(angle) : Math.Sin(angle), table.Data[p * 4 + i], 1e-6);
                }
            }
        }
    }

    [Fact]
    public void Rotary_embedding_with_a_wrong_half_does_not_fuse()
    {
        var t = new Tracer(OpRegistry.Default);
        var positionIds = t.Input("position_ids", DType.I64, Batch, Seq);
        var freqs = positionIds.Cast(DType.F32).Unsqueeze(-1) * t.Buffer("inv_freq", [1f, 0.1f, 0.01f, 0.001f]);
        var emb = Tensor.Cat(-1, freqs, freqs);
        var q = t.Input("q", DType.F32, Batch, 4, Seq, 8);
        t.Output(q * emb.Cos().Unsqueeze(1) + Tensor.Cat(-1, -q.Slice(-1, 3, long.MaxValue), q.Slice(-1, 0, 3)) * emb.Sin().Unsqueeze(1));
        t.Graph.Model = ModelOfContext(32);

        Assert.Equal(0, Apply(new FuseRotaryEmbeddingTransform(), t.Graph));
    }

    // nn.LayerNorm as Gpt2Model traces it.
    private static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias)
    {
        var centered = x - x.Mean(-1, keepdim: true);
        return centered * (centered.Pow(2).Mean(-1, keepdim: true) + 1e-5).Rsqrt() * weight + bias;
    }

    [Fact]
    public void Layer_norm_fuses_before_the_rms_norm_pattern_can_take_its_inner_part()
    {
        (Tracer, Tensor) Trace()
        {
            var t = new Tracer(OpRegistry.Default);
            var x = t.Input("x", DType.F32, Batch, Seq, 64);
            t.Output(LayerNorm(x, t.Parameter("w", 64), t.Parameter("b", 64)));
            return (t, x);
        }
        var (t, x) = Trace();
        Assert.Equal(1, Apply(new FuseLayerNormTransform(), t.Graph));
        var norm = Assert.Single(t.Graph.Nodes);
        Assert.Equal("layer_norm", norm.Op);
        Assert.Equal(1e-5, norm.Float("epsilon"));
        Assert.Same(x.Value, norm.Inputs[0]);

        // The order of the default pipeline matters: RMSNorm's pattern matches the centered x.
        var (rmsFirst, _) = Trace();
        Assert.Equal(1, Apply(new FuseRmsNormTransform(), rmsFirst.Graph));
        Assert.Equal(0, Apply(new FuseLayerNormTransform(), rmsFirst.Graph));
    }

    [Fact]
    public void Layer_norm_of_another_value_than_the_one_centered_does_not_fuse()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, Seq, 64);
        var y = t.Input("y", DType.F32, Batch, Seq, 64);
        var centered = x - y.Mean(-1, keepdim: true);
        t.Output(centered * (centered.Pow(2).Mean(-1, keepdim: true) + 1e-5).Rsqrt() * t.Parameter("w", 64) + t.Parameter("b", 64));

        Assert.Equal(0, Apply(new FuseLayerNormTransform(), t.Graph));
    }

    [Fact]
    public void Skip_layer_norm_takes_the_residual_add_and_gives_the_sum_to_its_other_readers()
    {
        var t = new Tracer(OpRegistry.Default);
        var (a, b) = (t.Input("a", DType.F32, Batch, Seq, 64), t.Input("b", DType.F32, Batch, Seq, 64));
        var sum = a + b;
        t.Output(LayerNorm(sum, t.Parameter("w", 64), t.Parameter("b.bias", 64)));
        t.Output(sum * 2.0);

        Assert.Equal(1, Apply(new FuseLayerNormTransform(), t.Graph));
        Assert.Equal(1, Apply(new FuseSkipLayerNormTransform(), t.Graph));
        var fused = Assert.Single(t.Graph.Nodes, n => n.Op == "skip_layer_norm");
        Assert.Equal([a.Value, b.Value], fused.Inputs.Take(2));
        Assert.DoesNotContain(t.Graph.Nodes, n => n.Op is "add" or "layer_norm");
        Assert.Same(fused.Outputs[1], t.Graph.Nodes.Single(n => n.Op == "mul").Inputs[0]);
    }

    [Fact]
    public void Gelu_fuses_the_primitive_form_of_the_shared_tanh_gelu()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, 128);
        t.Output(Kiln.Models.Activations.GeluTanh(x));
        Assert.Contains(t.Graph.Nodes, n => n.Op == "tanh");

        Assert.Equal(1, Apply(new FuseGeluTransform(), t.Graph));
        var gelu = Assert.Single(t.Graph.Nodes);
        Assert.Equal(("gelu", "tanh"), (gelu.Op, gelu.String("approximate")));
        Assert.Same(x.Value, gelu.Inputs[0]);
    }

    [Fact]
    public void A_tanh_gelu_with_another_constant_does_not_fuse()
    {
        var t = new Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Batch, 128);
        t.Output(x * 0.5 * (((x + x.Pow(3) * 0.045) * Math.Sqrt(2 / Math.PI)).Tanh() + 1.0));

        Assert.Equal(0, Apply(new FuseGeluTransform(), t.Graph));
    }
}
