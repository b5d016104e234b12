using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Tests.Cache;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Tests.Transforms.Compile;

/// <summary>
/// use_matmul_nbits (off by default): int4_sym products run on ONNX Runtime's MatMulNBits over the same weights
/// re-laid by recipe steps, with logits close to Kiln's own int4_sym kernel (the transform disabled), pre-packing
/// on, the re-laid weights saved in and mapped from the weights tier; other schemes stay on Kiln's kernel.
/// </summary>
public sealed class UseMatMulNBitsTests(ITestOutputHelper output)
{
    private const string Int4Sym = "quantize_weights.scheme=int4_sym";
    private const string On = "use_matmul_nbits.enabled=true";

    private static ModelGraph Compile(string model, params string[] sets)
    {
        using var checkpoint = Checkpoint.Open(model);
        return ModelCompiler.Compile(checkpoint, PipelineConfig.Load(null, sets)).Graph;
    }

    [Fact]
    public void Every_int4_sym_product_becomes_matmul_nbits_over_its_re_laid_blocks()
    {
        var graph = Compile(TestPaths.DefaultModel, Int4Sym, On);

        // 5 layers × (qkv, o, gate_up, down) + the output layer.
        Assert.Equal(21, graph.Nodes.Count(n => n.Op == "matmul_nbits"));
        Assert.DoesNotContain(graph.Nodes, n => n.Op is "quantized_linear" or "kiln_linear" or "linear");
        // down_proj has k = 172: six blocks, the last one padded.
        var data = graph.Parameters.Single(p => p.Name == "model.layers.0.mlp.down_proj.weight.nbits_data");
        var scales = graph.Parameters.Single(p => p.Name == "model.layers.0.mlp.down_proj.weight.nbits_scales");
        Assert.Equal(DType.U8, data.Value.DType);
        Assert.Equal([64L, 6, 16], data.Value.Shape.ToSizes());
        Assert.Equal(DType.F32, scales.Value.DType);
        Assert.Equal([64L, 6], scales.Value.Shape.ToSizes());
        Assert.Equal("source(model.layers.0.mlp.down_proj.weight) |> quantize(int4_sym) |> nbits_layout(data)", data.Recipe.ToString());
        Assert.Equal("source(model.layers.0.mlp.down_proj.weight) |> quantize(int4_sym) |> nbits_layout(scales)", scales.Recipe.ToString());
        // The blocks themselves are no longer a parameter; the tied embedding stays float for its lookup.
        Assert.DoesNotContain(graph.Parameters, p => p.Name is "model.layers.0.mlp.down_proj.weight" or "model.embed_tokens.weight.int4_sym");
        Assert.Contains(graph.Parameters, p => p.Name == "model.embed_tokens.weight" && p.Value.DType == DType.F32);
        // MatMulNBits is unusable without its pre-packed weights.
        Assert.Equal("true", graph.Metadata[SessionSettings.PrepackingMetadataKey]);
        Assert.Equal("int4_sym", Kiln.Benchmarks.WeightFormat.Of(graph));
    }

    [Theory]
    [InlineData("quantize_weights.scheme=int8", On)]
    [InlineData("quantize_weights.scheme=int4", On)]
    [InlineData(Int4Sym, null)]   // the transform as the default pipeline has it: off
    public void Other_schemes_and_the_disabled_transform_stay_on_the_kiln_kernel(string scheme, string? setting)
    {
        var graph = Compile(TestPaths.DefaultModel, setting is null ? [scheme] : [scheme, setting]);
        Assert.Equal(21, graph.Nodes.Count(n => n.Op == "quantized_linear"));
        Assert.DoesNotContain(graph.Nodes, n => n.Op == "matmul_nbits");
        Assert.DoesNotContain(graph.Parameters, p => p.Name.Contains(".nbits_", StringComparison.Ordinal));
        Assert.Equal("false", graph.Metadata[SessionSettings.PrepackingMetadataKey]);
    }

    [Theory]
    // Both quantize the activations to int8 in blocks of 32 and sum the same integer products, so they differ
    // only in the order of the float sums, until that order moves an activation of a later product across a
    // rounding boundary of its quantization: measured 1.3e-5, 1.5e-6 and 7.8e-4 against Kiln's four-row kernel and
    // 0.014 (llama_gqa) against its integer panels, with MLAS's AVX-512 VNNI kernels. The bounds leave room for
    // MLAS's other paths (AVX2, AVX-VNNI); a wrong nibble order or scale gives errors of the order of the logits.
    [InlineData("default", 0.05)]
    [InlineData("llama_gqa", 0.05)]
    [InlineData("qwen2", 0.05)]
    public void Logits_stay_close_to_the_kiln_int4_sym_kernel(string family, double bound)
    {
        using var temp = new TempDir();
        var directory = FamilyModels.Directory(family, temp);
        var settings = new SessionSettings(IntraOpThreads: 2);
        using var nbits = LoadedModel.Load(directory, settings, PipelineConfig.Load(null, [Int4Sym, On]));
        using var kiln = LoadedModel.Load(directory, settings, PipelineConfig.Load(null, [Int4Sym]));
        Assert.Contains(nbits.Graph.Nodes, n => n.Op == "matmul_nbits");
        Assert.True(nbits.Session.Prepacking);

        var ids = Enumerable.Range(0, 16).Select(i => (long)((i * 37 + 1) % kiln.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var (actual, expected) = (nbits.Forward(ids, positions), kiln.Forward(ids, positions));
        var difference = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        var agree = Enumerable.Range(0, ids.Length).Count(p =>
            Sampler.ArgMax(actual.AsSpan(p * kiln.VocabSize, kiln.VocabSize)) == Sampler.ArgMax(expected.AsSpan(p * kiln.VocabSize, kiln.VocabSize)));
        output.WriteLine($"{family}: max |MatMulNBits - Kiln int4_sym| over {ids.Length} positions = {difference}, top-1 agreement {agree}/{ids.Length}");
        Assert.True(difference <= bound, $"max difference {difference} > {bound}");
        Assert.True(agree >= ids.Length - 1, $"top-1 agreement {agree}/{ids.Length}");
        Assert.True(difference > 0, "two different kernels gave identical logits: was MatMulNBits run at all?");
    }

    [Fact]
    public void The_re_laid_weights_are_saved_once_and_mapped_by_a_warm_start()
    {
        using var cache = new CacheDir();
        string[] logits = ["logits", "--ids", "1 403 407 300 12", "--json", "--threads", "1", "--quantize", "int4_sym", "--set", On];
        var uncached = cache.Run([.. logits, "--no-cache"]);
        var cold = cache.Run(logits);
        var warm = cache.Run(logits);
        Assert.True(uncached.ExitCode == 0 && cold.ExitCode == 0 && warm.ExitCode == 0, uncached.Stderr + cold.Stderr + warm.Stderr);
        // 21 weights, each as MatMulNBits's data and scales.
        Assert.Contains("kiln: weights miss (no weights in the entry); computed 42 product(s)", cold.Stderr);
        Assert.Contains("kiln: weights hit", warm.Stderr);
        Assert.Equal(uncached.Stdout, cold.Stdout);
        Assert.Equal(cold.Stdout, warm.Stdout);

        var entry = cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Index == DefaultPoints.FinalIndex);
        var folder = Assert.Single(Directory.EnumerateDirectories(entry, WeightsTier.FolderPrefix + "*"));
        using var saved = SafetensorsFile.Open(Path.Combine(folder, "rank_0", WeightsTier.DataFile));
        Assert.Equal([64L, 6, 16], saved.Tensors["model.layers.0.mlp.down_proj.weight.nbits_data"].Shape);
        Assert.Equal(DType.F32, saved.Tensors["model.embed_tokens.weight.int4_sym.nbits_scales"].DType);
        Assert.DoesNotContain("model.layers.0.mlp.down_proj.weight", saved.Tensors.Keys);
    }

    [Fact]
    public void Quantizing_reports_each_weight_once_though_two_tensors_are_made_from_it()
    {
        using var checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
        var graph = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(null, [Int4Sym, On])).Graph;
        var reports = new List<QuantizeProgress>();
        using var weights = WeightSet.Compute(checkpoint, graph, progress: new SynchronousProgress<QuantizeProgress>(reports.Add));
        // Every float weight of the 21 products: the projections, and the tied embedding once for the output layer.
        var expected = checkpoint.Tensors.Values.Where(t => t.Shape.Length == 2).Sum(t => t.Shape[0] * t.Shape[1]);
        Assert.Equal(expected, reports.Max(r => r.Done));
        Assert.All(reports, r => Assert.Equal(expected, r.Total));
    }

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly Lock _lock = new();

        public void Report(T value)
        {
            lock (_lock) report(value);
        }
    }
}
