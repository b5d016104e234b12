using Kiln.Checkpoints;
using Kiln.Runtime;
using Kiln.Tests.Cache;

namespace Kiln.Tests.Distributed;

/// <summary>
/// Tensor-parallel models in one process: the ranks are threads of a <see cref="FakeWorld"/> whose
/// all-reduce the sessions' ai.kiln.AllReduce nodes call. Each rank's logits must equal the
/// transformers oracle's, and each rank must hold only its share of the split weights.
/// </summary>
public sealed class ShardedModelTests
{
    private const float Tolerance = 1e-4f;

    // Every oracle case has 4 attention heads and 2 key/value heads (GPT-2: 4): 4 ranks replicate each kv head on two.
    public static TheoryData<string, int> Cases => new()
    {
        { "llama_gqa", 2 }, { "llama_gqa", 4 }, { "qwen2", 2 }, { "qwen2", 4 }, { "mistral", 2 }, { "phi3", 2 }, { "phi3", 4 }, { "llama_gqa_sharded", 2 },
        { "gpt2", 2 }, { "gpt2", 4 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_rank_gives_the_oracle_logits_and_greedy_tokens(string name, int ranks)
    {
        using var reference = SafetensorsFile.Open(Path.Combine(TestPaths.Oracle(name), "expected_logits.safetensors"));
        var sequences = OracleCase.Load(name);
        new FakeWorld(ranks).Run(world =>
        {
            using var model = LoadedModel.Load(TestPaths.Oracle(name), world: world);
            var vocab = model.VocabSize;
            for (var s = 0; s < sequences.Count; s++)
            {
                var ids = sequences[s].InputIds;
                var logits = model.Forward(ids.Select(i => (long)i).ToArray(), Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray());
                var expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(reference.GetBytes(reference.Tensors[$"seq{s}.logits"]));
                Assert.True(MaxAbsDifference(logits, expected) <= Tolerance, $"rank {world.Rank} of {ranks}, sequence {s}: logits differ");
                var greedy = new Generator(model).Generate(ids, new GenerationOptions(sequences[s].GreedyNewTokens.Length, new SamplingOptions(), new HashSet<int>()));
                Assert.Equal(sequences[s].GreedyNewTokens, greedy.NewIds);
            }
            return 0;
        });
    }

    [Fact]
    public void A_rank_holds_its_share_of_each_split_weight_and_all_of_the_others()
    {
        using var whole = LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: Unfused());
        var wholeBytes = whole.Weights.ToDictionary(w => w.Name, w => w.ByteLength);
        var perRank = new FakeWorld(2).Run(world =>
        {
            using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: Unfused(), world: world);
            return model.Weights.ToDictionary(w => w.Name, w => w.ByteLength);
        });
        foreach (var rank in perRank)
        {
            Assert.Equal(wholeBytes.Keys.Order(), rank.Keys.Order());
            foreach (var (name, bytes) in rank)
            {
                var split = name.Contains("_proj.weight", StringComparison.Ordinal);
                Assert.True(bytes == (split ? wholeBytes[name] / 2 : wholeBytes[name]), $"{name}: {bytes} bytes on a rank, {wholeBytes[name]} whole");
            }
        }
    }

    [Fact]
    public void A_rank_graph_sums_after_each_block_and_still_fuses_its_projections()
    {
        var graphs = new FakeWorld(2).Run(world =>
        {
            using var checkpoint = Checkpoint.Open(TestPaths.Oracle("llama_gqa"));
            return Kiln.Compile.ModelCompiler.Compile(checkpoint, Kiln.Transforms.PipelineConfig.Load(), world: world).Graph;
        });
        foreach (var graph in graphs)
        {
            var layers = graph.Nodes.Count(n => n.Op == "cached_attention");
            Assert.True(layers > 0);
            Assert.Equal(2 * layers, graph.Nodes.Count(n => n.Op == "all_reduce"));
            var qkv = graph.Parameters.Where(p => p.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal)).ToList();
            Assert.Equal(layers, qkv.Count);
            Assert.All(qkv, p => Assert.IsType<Kiln.Weights.SliceEachStep>(p.Recipe.Steps[0]));
        }
    }

    [Fact]
    public void A_degree_that_does_not_divide_the_heads_is_refused_naming_the_field()
    {
        var errors = new FakeWorld(3).Run(world => Assert.Throws<KilnException>(() => LoadedModel.Load(TestPaths.Oracle("llama_gqa"), world: world)).Message);
        Assert.All(errors, e => Assert.Contains("num_attention_heads", e));
    }

    // Row-parallel shares (o_proj's 32 inputs of 64, down_proj's 64 of 128) are whole blocks of 32, so each rank's
    // blocks are the single process's blocks of its slice, and the sum over ranks gives the same products up to the
    // order of the float sums. int4_sym runs on Kiln's kernel or MatMulNBits (use_matmul_nbits), int8 on Kiln's.
    // int4's minimum term m·Σx sums the quantized activations (QuantizedMath.QuantizeActivations): with the float Σx
    // its ranks drifted from the single process by up to 0.083 here. Even so, the order of a row-parallel sum can move
    // an activation of the next product across a rounding boundary of its int8 quantization, one step of d_x, which
    // int4's cancelling terms carry to the logits: measured up to 0.017 for some prompts (most stay within 2e-6), on
    // the four-row and the panel kernels alike. So the bound is 0.05, far below what a wrong shard gives, and the top
    // token must agree at every position.
    [Theory]
    [InlineData("int8")]
    [InlineData("int4")]
    [InlineData("int4_sym")]
    [InlineData("int4_sym use_matmul_nbits.enabled=true")]
    public void Quantized_ranks_give_the_logits_of_the_quantized_single_process(string settings)
    {
        var scheme = settings.Split(' ')[0];
        var pipeline = Kiln.Transforms.PipelineConfig.Load(null, [$"quantize_weights.scheme={scheme}", .. settings.Split(' ').Skip(1)]);
        long[] ids = [1, 17, 5, 99, 42, 7, 63, 2];
        long[] positions = [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)];
        using var whole = LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: pipeline);
        var expected = whole.Forward(ids, positions);
        var ranks = new FakeWorld(2).Run(world =>
        {
            using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: pipeline, world: world);
            var quantized = model.Graph.Nodes.Count(n => n.Op is "quantized_linear" or "matmul_nbits");
            return (Logits: model.Forward(ids, positions), Quantized: quantized, NBits: model.Graph.Nodes.Count(n => n.Op == "matmul_nbits"));
        });
        foreach (var rank in ranks)
        {
            // 2 layers × (qkv, o, gate_up, down) + the output layer.
            Assert.Equal(9, rank.Quantized);
            Assert.Equal(settings.Contains("use_matmul_nbits.enabled=true") ? 9 : 0, rank.NBits);
            Assert.True(MaxAbsDifference(rank.Logits, expected) <= 0.05f, $"{scheme}: max difference {MaxAbsDifference(rank.Logits, expected)}");
            var vocab = expected.Length / ids.Length;
            for (var p = 0; p < ids.Length; p++)
                Assert.Equal(Sampler.ArgMax(expected.AsSpan(p * vocab, vocab)), Sampler.ArgMax(rank.Logits.AsSpan(p * vocab, vocab)));
        }
    }

    // Without the post-load fusions, every projection keeps its checkpoint name, so shares can be compared tensor by tensor.
    private static Kiln.Transforms.PipelineConfig Unfused() =>
        Kiln.Transforms.PipelineConfig.Load(null, ["fuse_qkv_projections.enabled=false", "fuse_gate_up_projections.enabled=false"]);

    private static float MaxAbsDifference(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var max = 0f;
        for (var i = 0; i < actual.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        return max;
    }
}
