using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Tests.Cache;
using Kiln.Transforms;
using Xunit.Abstractions;

namespace Kiln.Tests.Models;

/// <summary>
/// The GPT-2 family through the whole compiler: the fused graph, --verify, the KV cache, the config's
/// errors, and its test checkpoints run by the command line with and without tensor parallelism. (The
/// oracle's logits and greedy tokens are in OracleTests, its ranks in ShardedModelTests, its quantized
/// accuracy in QuantizedAccuracyTests.)
/// </summary>
public sealed class Gpt2FamilyTests(ITestOutputHelper output)
{
    private static string Oracle => TestPaths.Oracle("gpt2");

    [Fact]
    public void The_default_pipeline_leaves_fused_layer_norms_gelus_and_attention_and_no_primitives_of_them()
    {
        using var checkpoint = Checkpoint.Open(Oracle);
        var graph = ModelFactory.Export(checkpoint.Config, "config.json", OpRegistry.Default);
        var layers = checkpoint.Config["n_layer"]!.GetValue<int>();
        var traced = graph.Nodes.CountBy(n => n.Op).ToDictionary();
        // The reference form has each primitive the fusions must take: 2 layers x 2 LayerNorms + ln_f, one gelu_new per layer.
        Assert.Equal(2 * layers + 1, traced["sub"]);
        Assert.Equal(layers, traced["tanh"]);

        Pipeline.Run(graph, PipelineConfig.Load(sets: ["insert_kv_cache.enabled=false"]).Entries, new TransformContext(checkpoint));

        var count = graph.Nodes.CountBy(n => n.Op).ToDictionary();
        int Count(string op) => count.GetValueOrDefault(op);
        Assert.Equal(layers, Count("attention"));
        Assert.Equal(layers, Count("gelu"));
        Assert.All(graph.Nodes.Where(n => n.Op == "gelu"), n => Assert.Equal("tanh", n.String("approximate")));
        // Every LayerNorm reads a residual sum (the first one the sum of the token and position embeddings).
        Assert.Equal(2 * layers + 1, Count("skip_layer_norm"));
        Assert.Equal(0, Count("layer_norm"));
        Assert.Equal(layers, graph.Parameters.Count(p => p.Name.EndsWith(".attn.qkv_proj.weight", StringComparison.Ordinal)));
        foreach (var op in new[] { "sub", "mean", "pow", "rsqrt", "tanh", "softmax", "matmul", "rms_norm", "skip_rms_norm" }) Assert.Equal(0, Count(op));
        Assert.Empty(GraphAnalysis.DeadNodes(graph));
    }

    [Fact]
    public void Compile_verify_passes_on_the_default_pipeline()
    {
        var result = KilnCli.Run("compile", "--model", Oracle, "--verify", "--json", "--no-cache");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var transforms = JsonNode.Parse(result.Stdout)!["transforms"]!.AsArray();
        foreach (var name in new[] { "fuse_layer_norm", "fuse_gelu", "fuse_skip_layer_norm", "fuse_attention", "insert_kv_cache" })
            Assert.True(transforms.Single(t => t!["name"]!.GetValue<string>() == name)!["matches"]!.GetValue<int>() > 0, $"{name} matched nothing");
        foreach (var t in transforms) Assert.InRange(t!["verify_max_abs_difference"]!.GetValue<double>(), 0, 1e-3);
    }

    [Fact]
    public void Cached_decoding_gives_the_logits_of_the_reference_form_recomputing_the_sequence()
    {
        var unfused = PipelineConfig.Load().Entries.OfType<TransformStep>().Where(e => e.Name != "load_weights").Select(e => $"{e.Name}.enabled=false").Distinct().ToArray();
        using var reference = LoadedModel.Load(Oracle, pipeline: PipelineConfig.Load(sets: unfused));
        using var cached = LoadedModel.Load(Oracle);
        Assert.Null(reference.KvCache);
        Assert.NotNull(cached.KvCache);

        var expected = OracleCase.Load("gpt2")[1];
        var sequence = expected.InputIds.Select(i => (long)i).ToList();
        var vocab = cached.VocabSize;
        using var decoder = new CachedDecoder(cached, sequence.Count + expected.GreedyNewTokens.Length);
        var logits = decoder.Prefill(sequence).ToArray();
        var largest = 0f;
        foreach (var next in expected.GreedyNewTokens)
        {
            var all = reference.Forward(sequence, Enumerable.Range(0, sequence.Count).Select(p => (long)p).ToArray());
            for (var i = 0; i < vocab; i++) largest = Math.Max(largest, Math.Abs(all[(sequence.Count - 1) * vocab + i] - logits[i]));
            Assert.Equal(next, Sampler.ArgMax(logits));
            sequence.Add(next);
            logits = decoder.Decode(next).ToArray();
        }
        output.WriteLine($"largest |cached - reference| logit: {largest}");
        Assert.True(largest <= 1e-4f, $"logits differ by {largest}");
    }

    [Fact]
    public void A_checkpoint_saved_from_the_base_model_without_the_transformer_prefix_gives_the_oracle_logits()
    {
        // As the original gpt2 files: tensor names without "transformer.", and the attention's causal-mask buffers beside them.
        using var dir = new TempDir();
        File.Copy(Path.Combine(Oracle, "config.json"), dir.File("config.json"));
        using (var weights = SafetensorsFile.Open(Path.Combine(Oracle, "model.safetensors")))
        {
            var layers = weights.Tensors.Keys.Count(n => n.EndsWith(".attn.c_attn.weight", StringComparison.Ordinal));
            var masks = Enumerable.Range(0, layers).Select(layer => new SafetensorsEntry($"h.{layer}.attn.bias", DType.F32, [1, 1, 4, 4]));
            var entries = weights.Tensors.Values.Select(t => new SafetensorsEntry(t.Name["transformer.".Length..], t.DType, t.Shape)).Concat(masks);
            using var writer = SafetensorsWriter.Create(dir.File("model.safetensors"), entries);
            foreach (var entry in writer.Order)
            {
                writer.WriteTensor(entry.Name, weights.Tensors.TryGetValue("transformer." + entry.Name, out var tensor)
                    ? weights.GetBytes(tensor)
                    : new byte[entry.ByteLength]);
            }
            writer.Complete();
        }

        using var model = LoadedModel.Load(dir.Path);
        Assert.Contains(model.Graph.Parameters, p => p.Recipe.Sources.Contains("wte.weight"));
        using var reference = SafetensorsFile.Open(Path.Combine(Oracle, "expected_logits.safetensors"));
        var sequence = OracleCase.Load("gpt2")[2];
        var logits = model.Forward(sequence.InputIds.Select(i => (long)i).ToArray(), Enumerable.Range(0, sequence.InputIds.Length).Select(i => (long)i).ToArray());
        var expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(reference.GetBytes(reference.Tensors["seq2.logits"]));
        Assert.Equal(expected.Length, logits.Length);
        var largest = 0f;
        for (var i = 0; i < logits.Length; i++) largest = Math.Max(largest, Math.Abs(logits[i] - expected[i]));
        Assert.True(largest <= 1e-4f, $"logits differ by {largest}");
    }

    [Theory]
    [InlineData("n_head", "3", "config.json: n_head: 3 does not divide n_embd 64")]
    [InlineData("activation_function", "\"relu\"", "config.json: activation_function: unsupported activation 'relu' (supported: gelu_new, gelu_pytorch_tanh)")]
    [InlineData("add_cross_attention", "true", "config.json: add_cross_attention: cross-attention (an encoder-decoder GPT-2) is not supported")]
    [InlineData("layer_norm_epsilon", "0", "config.json: layer_norm_epsilon: must be positive, got 0")]
    [InlineData("n_inner", "1048576.5", "config.json: n_inner: expected an integer, got 1048576.5")]
    public void An_unsupported_config_is_a_one_line_error_naming_the_field(string field, string json, string message)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Oracle, "config.json")))!.AsObject();
        config[field] = JsonNode.Parse(json);
        var e = Assert.Throws<KilnException>(() => ModelFactory.Read(config, "config.json"));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Unscaled_and_layer_scaled_attention_follow_the_config_and_still_fuse()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Oracle, "config.json")))!.AsObject();
        double[] Scales(JsonObject c)
        {
            var graph = ModelFactory.Export(c, "config.json", OpRegistry.Default);
            Pipeline.Run(graph, PipelineConfig.Load().Entries.Where(e => e.Stage <= Stage.PatternMatcher).ToList(), new TransformContext(null));
            return [.. graph.Nodes.Where(n => n.Op == "attention").Select(n => n.Float("scale"))];
        }
        Assert.Equal([0.25, 0.25], Scales(config));
        config["scale_attn_by_inverse_layer_idx"] = true;
        Assert.Equal([0.25, 0.125], Scales(config));
        config["scale_attn_weights"] = false;
        config["scale_attn_by_inverse_layer_idx"] = false;
        Assert.Equal([1.0, 1.0], Scales(config));
    }

    [Fact]
    public void A_test_checkpoint_written_by_testmodel_runs_and_two_ranks_give_the_logits_of_one()
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        var written = KilnCli.Run("testmodel", "--family", "gpt2", "--layers", "2", "--hidden", "64", "--heads", "4", "--intermediate", "128",
            "--vocab", "100", "--max-positions", "64", "--weight-scale", "8", "--out", model);
        Assert.True(written.ExitCode == 0, written.Stderr);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!;
        Assert.Equal(("gpt2", 64, 2, 4, 128, 64), ((string)config["model_type"]!, (int)config["n_embd"]!, (int)config["n_layer"]!,
            (int)config["n_head"]!, (int)config["n_inner"]!, (int)config["n_positions"]!));
        using (var weights = SafetensorsFile.Open(Path.Combine(model, "model.safetensors")))
        {
            Assert.Equal([64L, 192], weights.Tensors["transformer.h.0.attn.c_attn.weight"].Shape);
            Assert.Equal([128L, 64], weights.Tensors["transformer.h.1.mlp.c_proj.weight"].Shape);
            Assert.DoesNotContain("lm_head.weight", weights.Tensors.Keys);
        }

        string[] args = ["logits", "--model", model, "--ids", "1 5 9 13 17", "--json", "--no-cache"];
        var one = KilnCli.Run(args);
        var two = KilnCli.Run([.. args, "--tp", "2"]);
        Assert.True(one.ExitCode == 0, one.Stderr);
        Assert.True(two.ExitCode == 0, two.Stderr);
        var (expected, actual) = (LastLogits(one.Stdout), LastLogits(two.Stdout));
        Assert.Equal(100, expected.Length);
        Assert.True(expected.Max() - expected.Min() > 0.1f, "the logits are nearly constant: the test would not see a wrong shard");
        Assert.True(expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second)) <= 1e-4f);
    }

    [Fact]
    public void A_rank_holds_its_share_of_every_projection_and_sums_after_attention_and_the_mlp()
    {
        var graphs = new FakeWorld(2).Run(world =>
        {
            using var checkpoint = Checkpoint.Open(Oracle);
            return Kiln.Compile.ModelCompiler.Compile(checkpoint, PipelineConfig.Load(), world: world).Graph;
        });
        foreach (var graph in graphs)
        {
            Assert.Equal(2 * 2, graph.Nodes.Count(n => n.Op == "all_reduce"));
            var shapes = graph.Parameters.ToDictionary(p => p.Name, p => p.Value.Shape.ToSizes());
            // Two of four heads (q, k, v: 32 rows each) and half of the 128 MLP features; c_proj's read their input columns.
            Assert.Equal([96L, 64], shapes["transformer.h.0.attn.qkv_proj.weight"]);
            Assert.Equal([64L, 32], shapes["transformer.h.0.attn.c_proj.weight"]);
            Assert.Equal([64L, 64], shapes["transformer.h.1.mlp.c_fc.weight"]);
            Assert.Equal([64L], shapes["transformer.h.1.mlp.c_fc.bias"]);
            Assert.Equal([64L, 64], shapes["transformer.h.1.mlp.c_proj.weight"]);
            Assert.Equal([256L, 64], shapes["transformer.wte.weight"]);
        }
    }

    [Fact]
    public void A_world_that_does_not_divide_the_heads_is_refused_naming_gpt2s_own_field()
    {
        // The oracle has 4 heads; three ranks cannot share them. GPT-2's config calls the count n_head.
        var failure = Assert.Throws<AggregateException>(() => new FakeWorld(3).Run(world =>
        {
            using var checkpoint = Checkpoint.Open(Oracle);
            return Kiln.Compile.ModelCompiler.Compile(checkpoint, PipelineConfig.Load(), world: world).Graph;
        }));
        var error = Assert.IsType<KilnException>(failure.InnerExceptions[0]);
        Assert.Equal("tensor parallel degree 3 does not divide the model's 4 attention heads (config.json n_head)", error.Message);
    }

    [Fact]
    public void A_world_that_does_not_divide_the_mlp_is_refused_naming_n_inner()
    {
        // Four heads share over four ranks; an MLP 130 wide does not.
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("gpt2", Layers: 1, Hidden: 32, Heads: 4, KvHeads: 4, Intermediate: 130, Vocab: 50,
            DType: DType.F32, Seed: 5, MaxPositions: 16, ModelType: "gpt2"), dir.Path);
        var failure = Assert.Throws<AggregateException>(() => new FakeWorld(4).Run(world =>
        {
            using var checkpoint = Checkpoint.Open(dir.Path);
            return Kiln.Compile.ModelCompiler.Compile(checkpoint, PipelineConfig.Load(), world: world).Graph;
        }));
        var error = Assert.IsType<KilnException>(failure.InnerExceptions[0]);
        Assert.Equal("tensor parallel degree 4 does not divide the model's MLP width 130 (config.json n_inner)", error.Message);
    }

    [Fact]
    public void A_gelu_that_is_not_between_two_projections_stays_whole_on_every_rank()
    {
        // A projection then gelu as the graph's output: no second projection to sum the shares, so sharding leaves it.
        var t = new Kiln.Export.Tracer(OpRegistry.Default);
        var x = t.Input("x", DType.F32, Dim.Sym("batch"), Dim.Sym("seq"), 64);
        var up = t.Op("linear", [x, t.Parameter("up.weight", 128, 64)]);
        t.Output(t.Op("gelu", [up], new() { ["approximate"] = "tanh" }));

        Assert.Equal(0, new Kiln.Transforms.Sharding.ShardTensorParallelTransform().Apply(t.Graph, new TransformConfig(), new TransformContext(null, worldSize: 2)));
        Assert.All(t.Graph.Parameters, p => Assert.Empty(p.Recipe.Steps));
        Assert.DoesNotContain(t.Graph.Nodes, n => n.Op == "all_reduce");
    }

    [Fact]
    public void Testmodel_refuses_settings_gpt2_has_no_field_for()
    {
        using var dir = new TempDir();
        var result = KilnCli.Run("testmodel", "--family", "gpt2", "--layers", "1", "--hidden", "64", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "128", "--vocab", "100", "--out", dir.File("model"));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("kiln: error: kv_heads: model type gpt2 has no such setting", result.Stderr.Trim());
    }

    // The largest logit error allowed, as a share of the logits' spread (measured: int8 0.012, int4 0.15).
    [Theory]
    [InlineData("int8", 0.02)]
    [InlineData("int4", 0.2)]
    public void A_quantized_test_checkpoint_runs_on_the_quantized_kernels_and_stays_near_float32(string scheme, double share)
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("gpt2", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 4, Intermediate: 128, Vocab: 100,
            DType: DType.F32, Seed: 5, MaxPositions: 64, ModelType: "gpt2", WeightScale: 8), dir.Path);
        using var reference = LoadedModel.Load(dir.Path);
        using var quantized = LoadedModel.Load(dir.Path, pipeline: PipelineConfig.Load(sets: [$"quantize_weights.scheme={scheme}"]));
        // Every linear but none of the float ones: q/k/v (fused), c_proj, c_fc, mlp c_proj of each layer and the tied output layer.
        Assert.Equal(2 * 4 + 1, quantized.Graph.Nodes.Count(n => n.Op == "quantized_linear"));
        Assert.DoesNotContain(quantized.Graph.Nodes, n => n.Op == "kiln_linear");

        long[] ids = [3, 14, 15, 92, 65, 35, 89, 79];
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (expected, actual) = (reference.Forward(ids, positions), quantized.Forward(ids, positions));
        var error = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        var spread = expected.Max() - expected.Min();
        output.WriteLine($"{scheme}: largest logit error {error}, logit spread {spread}");
        Assert.True(error > 0, "quantizing changed nothing");
        Assert.True(error < share * spread, $"largest logit error {error} against a spread of {spread}");
    }

    [Fact]
    public void A_warm_start_restores_the_snapshot_and_generates_the_oracle_tokens()
    {
        using var cache = new TempDir();
        var environment = new Dictionary<string, string> { ["KILN_CACHE_DIR"] = cache.Path };
        var sequence = OracleCase.Load("gpt2")[1];
        string[] args = ["generate", "--model", Oracle, "--prompt-ids", string.Join(' ', sequence.InputIds), "--max-new-tokens", "16", "--json"];
        var cold = KilnCli.RunWith(cache.Path, environment, args);
        var warm = KilnCli.RunWith(cache.Path, environment, args);
        Assert.True(cold.ExitCode == 0, cold.Stderr);
        Assert.DoesNotContain("cache hit", cold.Stderr);
        Assert.Contains("cache hit at point", warm.Stderr);
        Assert.Equal(sequence.GreedyNewTokens, NewIds(cold.Stdout));
        Assert.Equal(sequence.GreedyNewTokens, NewIds(warm.Stdout));
    }

    [Fact]
    public void A_bf16_checkpoint_keeps_its_transposed_weights_bf16_and_matches_its_reference_form()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("gpt2", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 4, Intermediate: 128, Vocab: 100,
            DType: DType.BF16, Seed: 9, MaxPositions: 64, ModelType: "gpt2", WeightScale: 8), dir.Path);
        var unfused = PipelineConfig.Load().Entries.OfType<TransformStep>().Where(e => e.Name != "load_weights").Select(e => $"{e.Name}.enabled=false").Distinct().ToArray();
        using var reference = LoadedModel.Load(dir.Path, pipeline: PipelineConfig.Load(sets: unfused));
        using var model = LoadedModel.Load(dir.Path);
        // Every projection's weight (fused q/k/v, c_proj, c_fc, mlp.c_proj) is read by the kernel as bf16, transposed from the file.
        var kernelWeights = model.Graph.Nodes.Where(n => n.Op == "kiln_linear").Select(n => n.Inputs[1]).ToList();
        Assert.Equal(2 * 4 + 1, kernelWeights.Count);
        Assert.All(kernelWeights, w => Assert.Equal(DType.BF16, w.DType));
        Assert.Contains(model.Graph.Parameters, p => p.Value.DType == DType.BF16 && p.Recipe.Steps.Any(s => s is Kiln.Weights.TransposeStep));

        long[] ids = [3, 14, 15, 92, 65, 35, 89, 79];
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (expected, actual) = (reference.Forward(ids, positions), model.Forward(ids, positions));
        var error = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        output.WriteLine($"bf16: largest |fused - reference| logit {error}, spread {expected.Max() - expected.Min()}");
        Assert.True(error <= 1e-3f, $"logits differ by {error}");
    }

    private static int[] NewIds(string json) => JsonNode.Parse(json)!["new_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    private static float[] LastLogits(string json) => JsonNode.Parse(json)!["last_logits"]!.AsArray().Select(n => (float)n!.GetValue<double>()).ToArray();
}
