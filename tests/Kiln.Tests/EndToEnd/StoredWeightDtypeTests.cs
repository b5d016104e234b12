using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit.Abstractions;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// 16-bit weights stay 16-bit: the oracle checkpoints converted to bf16 and to f16 run with their linear
/// weights and embedding table as stored (the default) and give the logits, argmax and greedy tokens
/// of the same checkpoint upcast at load (use_kiln_linear.weight_dtype=f32); the weights the kernel
/// reads are views of the mapped file or bf16 products, never f32 copies.
/// </summary>
public sealed class StoredWeightDtypeTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-4f;

    private const string Upcast = "use_kiln_linear.weight_dtype=f32";

    public static TheoryData<string, DType> Cases()
    {
        var data = new TheoryData<string, DType>();
        foreach (var name in new[] { "llama_gqa", "qwen2", "mistral" })
        {
            data.Add(name, DType.BF16);
            data.Add(name, DType.F16);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Native_16_bit_logits_and_greedy_tokens_equal_the_upcast_ones(string name, DType dtype)
    {
        using var temp = new TempDir();
        var directory = Convert(TestPaths.Oracle(name), temp.Path, dtype);
        using var native = LoadedModel.Load(directory);
        using var upcast = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: [Upcast]));

        // Every kernel weight and the embedding table are read as stored; upcast, every one is f32.
        Assert.All(KernelAndTableWeights(native.Graph), v => Assert.Equal(dtype, v.DType));
        Assert.All(KernelAndTableWeights(upcast.Graph), v => Assert.Equal(DType.F32, v.DType));
        var lookups = native.Graph.Nodes.Where(n => n.Op == "gather").Select(n => n.Output).ToHashSet(ReferenceEqualityComparer.Instance);
        Assert.Contains(native.Graph.Nodes, n => n.Op == "cast" && lookups.Contains(n.Inputs[0]));

        var vocab = native.VocabSize;
        foreach (var sequence in OracleCase.Load(name))
        {
            var ids = sequence.InputIds.Select(i => (long)i).ToArray();
            var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
            var (actual, expected) = (native.Forward(ids, positions), upcast.Forward(ids, positions));
            Assert.Equal(expected.Length, actual.Length);
            for (var p = 0; p < ids.Length; p++)
            {
                var a = actual.AsSpan(p * vocab, vocab);
                var e = expected.AsSpan(p * vocab, vocab);
                var difference = 0f;
                for (var i = 0; i < vocab; i++) difference = Math.Max(difference, Math.Abs(a[i] - e[i]));
                Assert.True(difference <= Tolerance, $"position {p}: max difference {difference}");
                Assert.Equal(Sampler.ArgMax(e), Sampler.ArgMax(a));
            }
            output.WriteLine($"{name} {dtype.Name()}: {ids.Length} positions within {Tolerance}");

            var options = new GenerationOptions(sequence.GreedyNewTokens.Length, new SamplingOptions(), new HashSet<int>());
            Assert.Equal(new Generator(upcast).Generate(sequence.InputIds, options).NewIds, new Generator(native).Generate(sequence.InputIds, options).NewIds);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_bf16_checkpoint_is_handed_to_the_session_without_f32_copies(bool inPieces)
    {
        using var temp = new TempDir();
        var directory = Convert(TestPaths.Oracle("llama_gqa"), temp.Path, DType.BF16);
        using var native = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: inPieces ? ["use_kiln_linear.weights_in_pieces=true"] : []));
        using var upcast = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: [Upcast]));

        var read = KernelAndTableWeights(native.Graph).Select(v => v.Name).ToHashSet();
        var weights = native.Weights.Where(w => read.Contains(w.Name)).ToList();
        Assert.NotEmpty(weights);
        var recipes = native.Graph.Parameters.ToDictionary(p => p.Name, p => p.Recipe);
        foreach (var w in weights)
        {
            Assert.Equal(DType.BF16, w.DType);
            // A copy only where the recipe concatenates (the fused q/k/v and gate/up weights), in bf16.
            Assert.Equal(recipes[w.Name].Steps.Any(s => s is ConcatStep), w.IsCopy);
            Assert.Equal(w.Shape.Aggregate(1L, (a, b) => a * b) * 2, w.ByteLength);
        }
        Assert.Equal(inPieces, weights.All(w => !w.IsCopy));
        // Whatever else is copied is small: the upcast rank-1 norm gains.
        Assert.All(native.Weights.Where(w => w.IsCopy && !read.Contains(w.Name)), w => Assert.Single(w.Shape));

        // Half the bytes of the upcast load for everything the kernel and the lookup read.
        var upcastBytes = upcast.Weights.Where(w => w.Shape.Length == 2).Sum(w => w.ByteLength);
        Assert.Equal(upcastBytes, 2 * weights.Sum(w => w.ByteLength));
        output.WriteLine($"weights: {native.WeightBytes:N0} bytes ({native.CopiedWeightBytes:N0} copied), upcast {upcast.WeightBytes:N0} ({upcast.CopiedWeightBytes:N0} copied)");
    }

    [Fact]
    public void With_use_kiln_linear_disabled_the_weights_are_upcast_as_before()
    {
        using var temp = new TempDir();
        var directory = Convert(TestPaths.Oracle("llama_gqa"), temp.Path, DType.BF16);
        using var model = LoadedModel.Load(directory, pipeline: PipelineConfig.Load(sets: ["use_kiln_linear.enabled=false"]));
        Assert.All(model.Graph.Parameters, p => Assert.Equal(DType.F32, p.Value.DType));
        Assert.All(model.Weights, w => Assert.Equal(DType.F32, w.DType));
    }

    [Fact]
    public void An_unknown_weight_dtype_is_an_error_naming_the_setting()
    {
        var error = Assert.Throws<KilnException>(() => LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: PipelineConfig.Load(sets: ["use_kiln_linear.weight_dtype=f64"])));
        Assert.Contains("use_kiln_linear.weight_dtype: 'f64' is neither stored nor f32", error.Message);
    }

    // The weights of every kiln_linear and the parameters every gather looks up.
    private static IEnumerable<Value> KernelAndTableWeights(ModelGraph graph)
    {
        var parameters = graph.Parameters.Select(p => p.Value).ToHashSet(ReferenceEqualityComparer.Instance);
        return graph.Nodes.Where(n => n.Op == "kiln_linear").SelectMany(n => n.Inputs.Skip(1))
            .Concat(graph.Nodes.Where(n => n.Op == "gather" && parameters.Contains(n.Inputs[0])).Select(n => n.Inputs[0]))
            .Distinct(ReferenceEqualityComparer.Instance).Cast<Value>();
    }

    /// <summary>A copy of the single-file checkpoint <paramref name="from"/> with every f32 tensor rounded to <paramref name="dtype"/>.</summary>
    public static string Convert(string from, string to, DType dtype)
    {
        foreach (var file in Directory.GetFiles(from).Where(f => Path.GetFileName(f) != Checkpoint.SingleWeightsFileName))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        using var source = SafetensorsFile.Open(Path.Combine(from, Checkpoint.SingleWeightsFileName));
        var entries = source.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new SafetensorsEntry(t.Name, t.DType == DType.F32 ? dtype : t.DType, t.Shape)).ToList();
        using var writer = SafetensorsWriter.Create(Path.Combine(to, Checkpoint.SingleWeightsFileName), entries);
        foreach (var entry in writer.Order)
        {
            var bytes = source.GetBytes(source.Tensors[entry.Name]);
            if (entry.DType == source.Tensors[entry.Name].DType)
            {
                writer.WriteTensor(entry.Name, bytes);
                continue;
            }
            var values = MemoryMarshal.Cast<byte, float>(bytes);
            var narrowed = new ushort[values.Length];
            if (dtype == DType.BF16) FloatConversion.SingleToBFloat16(values, narrowed);
            else FloatConversion.SingleToHalf(values, MemoryMarshal.Cast<ushort, Half>(narrowed.AsSpan()));
            writer.WriteTensor(entry.Name, MemoryMarshal.AsBytes(narrowed.AsSpan()));
        }
        writer.Complete();
        return to;
    }
}
