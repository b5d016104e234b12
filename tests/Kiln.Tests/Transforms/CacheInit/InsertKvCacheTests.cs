using Kiln.Graph;
using Kiln.Models;
using Kiln.Models.Llama;
using Kiln.Ops;
using Kiln.Tests.Runtime;
using Kiln.Transforms;
using Kiln.Transforms.CacheInit;

namespace Kiln.Tests.Transforms.CacheInit;

/// <summary>The graph insert_kv_cache leaves: its signature, the folded layout ops, and what it refuses.</summary>
public sealed class InsertKvCacheTests
{
    private static readonly LlamaConfig Config = LlamaConfig.Read(new ConfigReader(System.Text.Json.Nodes.JsonNode.Parse("""
        {"model_type": "mistral", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 64, "sliding_window": 7}
        """)!.AsObject(), "config.json"));

    [Fact]
    public void Every_attention_becomes_cached_attention_with_the_cache_signature()
    {
        var graph = FusedLlama.Trace(Config);
        Assert.Equal(3, Apply(graph, new InsertKvCacheConfig()));

        var cached = graph.Nodes.Where(n => n.Op == CachedAttentionOp.Name).ToList();
        Assert.Equal(3, cached.Count);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "attention" or "rotary_embedding" or "transpose");
        // The mask subgraph is gone; with rotary in the kernel nothing reads the position ids.
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "less_equal" or "greater" or "and" or "where" or "unsqueeze");
        Assert.Equal(["input_ids", "seqlens_k", "total_sequence_length", "past_key.0", "past_value.0", "past_key.1", "past_value.1", "past_key.2", "past_value.2"],
            graph.Inputs.Select(i => i.Name));
        Assert.Equal(Shape.Parse("[batch, 2, max_seq, 16]"), graph.Inputs.Single(i => i.Name == "past_key.1").Shape);
        Assert.Equal(DType.I32, graph.Inputs.Single(i => i.Name == "seqlens_k").DType);
        Assert.Equal(Shape.Scalar, graph.Inputs.Single(i => i.Name == "total_sequence_length").Shape);
        Assert.Equal(["present_key.0", "present_value.0", "present_key.1", "present_value.1", "present_key.2", "present_value.2"],
            graph.Outputs.Skip(1).Select(o => o.Name));
        Assert.Equal(new KvCacheSignature(3, 2, 16), KvCacheSignature.ReadFrom(graph));

        var first = cached[0];
        Assert.Equal(9, first.Inputs.Count);
        Assert.Equal([4L, 2L, 7L, 1L], new[] { first.Int("num_heads"), first.Int("kv_num_heads"), first.Int("local_window_size"), first.Int("do_rotary") });
        // q, k, v are the projections themselves: the traced reshape/transpose pairs fold away.
        Assert.All(first.Inputs.Take(3), v => Assert.Equal("linear", Producer(graph, v)?.Op));
        Assert.Contains(graph.Nodes, n => n.Op == "linear" && ReferenceEquals(n.Inputs[0], first.Outputs[0]));
        GraphVerifier.Verify(graph);

        // The cached graph survives the JSON round trip, signature included.
        var json = Kiln.Graph.Json.GraphSerializer.ToJson(graph);
        var restored = Kiln.Graph.Json.GraphSerializer.FromJson(json, OpRegistry.Default);
        Assert.Equal(GraphPrinter.Print(graph), GraphPrinter.Print(restored));
        Assert.Equal(KvCacheSignature.ReadFrom(graph), KvCacheSignature.ReadFrom(restored));
    }

    [Fact]
    public void Without_rotary_fusion_the_rotary_nodes_and_position_ids_stay()
    {
        var graph = FusedLlama.Trace(Config);
        Apply(graph, new InsertKvCacheConfig { FuseRotary = false });
        Assert.Equal(6, graph.Nodes.Count(n => n.Op == "rotary_embedding"));
        Assert.Contains(graph.Inputs, i => i.Name == "position_ids");
        Assert.All(graph.Nodes.Where(n => n.Op == CachedAttentionOp.Name), n => Assert.Equal(7, n.Inputs.Count));
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "where" or "less_equal");
        GraphVerifier.Verify(graph);
    }

    [Fact]
    public void Rotary_stays_outside_the_kernel_when_the_head_dimension_is_not_a_multiple_of_16()
    {
        var graph = FusedLlama.Trace(Config with { HiddenSize = 32, HeadDim = 8, Rope = Config.Rope with { HeadDim = 8 } });
        Apply(graph, new InsertKvCacheConfig());
        Assert.Equal(6, graph.Nodes.Count(n => n.Op == "rotary_embedding"));
        Assert.All(graph.Nodes.Where(n => n.Op == CachedAttentionOp.Name), n => Assert.Equal(0, n.Int("do_rotary")));
    }

    [Fact]
    public void A_graph_without_attention_is_left_alone()
    {
        var graph = new LlamaModel(Config).Trace(OpRegistry.Default);
        var nodes = graph.Nodes.Count;
        Assert.Equal(0, Apply(graph, new InsertKvCacheConfig()));
        Assert.Equal(nodes, graph.Nodes.Count);
        Assert.Null(KvCacheSignature.ReadFrom(graph));
    }

    [Fact]
    public void A_mask_that_is_not_the_causal_mask_is_refused()
    {
        var graph = FusedLlama.Trace(Config);
        // Swap the mask's where branches: the mask now blocks the past, which no cached kernel computes.
        var select = graph.Nodes.Single(n => n.Op == "where");
        var (whenTrue, whenFalse) = (select.Inputs[1], select.Inputs[2]);
        select.ReplaceInput(1, whenFalse);
        select.ReplaceInput(2, whenTrue);
        var error = Assert.Throws<GraphException>(() => Apply(graph, new InsertKvCacheConfig()));
        Assert.Contains("not a causal mask", error.Message);
    }

    [Fact]
    public void The_default_pipeline_runs_it_after_load_weights()
    {
        var names = PipelineConfig.Load().Entries.Select(e => e.Name).ToList();
        Assert.True(names.IndexOf("insert_kv_cache") > names.IndexOf("load_weights"));
    }

    private static int Apply(ModelGraph graph, InsertKvCacheConfig config) =>
        new InsertKvCacheTransform().Apply(graph, config, new TransformContext(null));

    private static Node? Producer(ModelGraph graph, Value value) => graph.Nodes.FirstOrDefault(n => n.Outputs.Contains(value));
}
