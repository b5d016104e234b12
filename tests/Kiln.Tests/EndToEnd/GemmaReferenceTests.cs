using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Tests.Reference;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit.Abstractions;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// Gemma against an independent reference (<see cref="GemmaReference"/>, loops over arrays following
/// modeling_gemma.py) on test checkpoints written from the family's description: every position's logits
/// within 1e-4 and the same argmax, greedy tokens decoded through the KV cache equal the reference's, the
/// fused graph's op counts, and the config errors.
/// </summary>
public sealed class GemmaReferenceTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    // "mqa": one key/value head, head_dim 32 where hidden / heads is 16. "gqa_bf16": bf16 weights (1 + w made in fp32), q/k/v/o biases.
    public static TheoryData<string> Cases => ["mqa", "gqa_bf16"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_reference_at_every_position(string name)
    {
        using var temp = new TempDir();
        var directory = Write(name, temp);
        var reference = GemmaReference.Load(directory);
        using var model = LoadedModel.Load(directory);
        var vocab = model.VocabSize;

        var ids = Enumerable.Range(0, 20).Select(i => (long)((i * 37 + 5) % vocab)).ToArray();
        var expected = reference.Forward(ids);
        var actual = model.Forward(ids, Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray());
        Assert.Equal(expected.Length, actual.Length);
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"{name}: max |kiln - reference| = {worst:E3}");
        Assert.True(worst <= Tolerance, $"max |kiln - reference| = {worst:E3}");
        for (var p = 0; p < ids.Length; p++)
            Assert.Equal(ArgMax(expected.AsSpan(p * vocab, vocab)), Sampler.ArgMax(actual.AsSpan(p * vocab, vocab)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_through_the_kv_cache_match_the_reference(string name)
    {
        using var temp = new TempDir();
        var directory = Write(name, temp);
        var reference = GemmaReference.Load(directory);
        using var model = LoadedModel.Load(directory);
        Assert.NotNull(model.KvCache);
        var vocab = model.VocabSize;

        int[] prompt = [2, 17, 90, 33, 5];
        var generated = new Generator(model).Generate(prompt, new GenerationOptions(16, new SamplingOptions(), new HashSet<int>())).NewIds;
        Assert.Equal(16, generated.Length);

        // Each cached step's logits against the reference recomputing the whole sequence, whose argmax is the next token.
        var sequence = prompt.Select(i => (long)i).ToList();
        using var decoder = new CachedDecoder(model, prompt.Length + generated.Length);
        var logits = decoder.Prefill(sequence).ToArray();
        foreach (var next in generated)
        {
            var all = reference.Forward(sequence);
            var last = all.AsSpan((sequence.Count - 1) * vocab, vocab);
            var worst = 0.0;
            for (var i = 0; i < vocab; i++) worst = Math.Max(worst, Math.Abs(last[i] - logits[i]));
            Assert.True(worst <= Tolerance, $"sequence of {sequence.Count}: cached logits differ from the reference by {worst:E3}");
            Assert.Equal(ArgMax(last), next);
            sequence.Add(next);
            logits = decoder.Decode(next).ToArray();
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_default_pipeline_fuses_every_norm_gelu_rotary_and_attention(string name)
    {
        using var temp = new TempDir();
        using var checkpoint = Checkpoint.Open(Write(name, temp));
        var graph = ModelFactory.Export(checkpoint.Config, "config.json", OpRegistry.Default);
        // The fused graph: the default pipeline without the KV cache (which turns attention into cached_attention).
        Pipeline.Run(graph, PipelineConfig.Load(sets: ["insert_kv_cache.enabled=false"]).Entries, new TransformContext(checkpoint));

        const int layers = 2;
        var count = graph.Nodes.CountBy(n => n.Op).ToDictionary();
        int Count(string op) => count.GetValueOrDefault(op);
        Assert.Equal(layers, Count("attention"));
        Assert.Equal(2 * layers, Count("rotary_embedding"));
        Assert.Equal(2 * layers, Count("skip_rms_norm"));
        Assert.Equal(1, Count("rms_norm"));
        Assert.Equal(layers, Count("gelu"));
        // What is left of the reference form: the embedding's normalizer and each GeGLU's product.
        Assert.Equal(1 + layers, Count("mul"));
        // Adds only for the biases of the fused q/k/v and of o, beside Kiln's linear kernel (not a residual: those are in skip_rms_norm).
        Assert.Equal(name == "gqa_bf16" ? 2 * layers : 0, Count("add"));
        foreach (var op in new[] { "softmax", "expand", "rsqrt", "tanh", "pow", "mean", "cos", "sin", "swiglu" }) Assert.Equal(0, Count(op));

        // Each norm's weight is 1 + w, made in fp32 by the load recipe from the stored w (bf16 too: no cast after it).
        foreach (var norm in graph.Nodes.Where(n => n.Op is "rms_norm" or "skip_rms_norm"))
        {
            var gain = graph.Parameters.Single(p => ReferenceEquals(p.Value, norm.Inputs[^1]));
            Assert.Matches(@"^model\.(norm|layers\.\d+\.(input|post_attention)_layernorm)\.weight$", gain.Name);
            Assert.Equal([new OffsetStep(1.0)], gain.Recipe.Steps);
        }
    }

    [Theory]
    [InlineData("hidden_activation", "\"gelu\"", "hidden_activation: unsupported activation 'gelu' (supported: gelu_pytorch_tanh)")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act: unsupported activation 'gelu' without hidden_activation (supported: gelu_pytorch_tanh)")]
    [InlineData("rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 2.0}", "rope_scaling.rope_type: unsupported rope scaling 'yarn'")]
    [InlineData("num_key_value_heads", "3", "num_key_value_heads: 3 does not divide num_attention_heads 4")]
    [InlineData("head_dim", "15", "head_dim: 15 is odd")]
    public void Unsupported_settings_are_one_line_errors_naming_the_file_and_field(string field, string value, string message)
    {
        var config = JsonNode.Parse("""
            {"model_type": "gemma", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
             "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "hidden_act": "gelu", "hidden_activation": "gelu_pytorch_tanh"}
            """)!.AsObject();
        if (field == "hidden_act") config.Remove("hidden_activation");
        config[field] = JsonNode.Parse(value);
        var error = Assert.Throws<KilnException>(() => ModelFactory.Read(config, "config.json"));
        Assert.Contains($"config.json: {message}", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Without_hidden_activation_the_tanh_gelu_of_hidden_act_is_read_and_tie_word_embeddings_defaults_to_true()
    {
        var config = JsonNode.Parse("""
            {"model_type": "gemma", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
             "num_attention_heads": 4, "hidden_act": "gelu_pytorch_tanh"}
            """)!.AsObject();
        var model = (Kiln.Models.Gemma.GemmaModel)ModelFactory.Read(config, "config.json");
        Assert.True(model.Config.TieWordEmbeddings);
        Assert.Equal(256, model.Config.HeadDim);
        Assert.DoesNotContain(model.Layout.Tensors, t => t.Name == "lm_head.weight");
    }

    private static string Write(string name, TempDir temp)
    {
        var options = name switch
        {
            "mqa" => new TestModelOptions("gemma", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 1, Intermediate: 96, Vocab: 128,
                DType: DType.F32, Seed: 11, MaxPositions: 64, ModelType: "gemma", ExplicitHeadDim: 32, WeightScale: 4),
            "gqa_bf16" => new TestModelOptions("gemma", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96, Vocab: 128,
                DType: DType.BF16, Seed: 12, MaxPositions: 64, ModelType: "gemma", ExplicitHeadDim: 16, AttentionBias: true, WeightScale: 4),
            _ => throw new ArgumentException(name, nameof(name)),
        };
        RandomCheckpointWriter.Write(options, temp.Path);
        return temp.Path;
    }

    private static int ArgMax(ReadOnlySpan<double> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }
}
