using System.Text.Json.Nodes;
using Kiln.Checkpoints.Gguf;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Tests.Checkpoints.Gguf;
using Kiln.Tests.Runtime;
using Kiln.Transforms;
using Kiln.Weights;
using Xunit.Abstractions;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// The default model's GGUF (models/stories260K-gguf) against its Hugging Face folder: the same tokens and
/// logits through the real `kiln`, and the same logits in process; copies of it in Q8_0 and Q4_0, written
/// here with Kiln's own quantizer, run on the quantized kernels as stored and give exactly the logits of
/// Kiln quantizing the Hugging Face folder.
/// </summary>
public sealed class GgufModelTests(ITestOutputHelper output) : IDisposable
{
    private static readonly IReadOnlyList<DefaultModelCase> Cases = DefaultModelCase.Load();
    private static readonly SessionSettings OneThread = new(IntraOpThreads: 1);
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    public static TheoryData<int> CaseIndexes => DefaultModelCase.Indices();

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Generate_from_the_gguf_folder_gives_the_reference_tokens_and_text(int index)
    {
        var expected = Cases[index];
        var result = KilnCli.Run("generate", "--model", Path.GetDirectoryName(GgufModels.Stories260K)!, "--prompt", expected.Prompt,
            "--max-new-tokens", "64", "--temperature", "0", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        Assert.Equal(expected.InputIds, Ints(json["prompt_ids"]!));
        Assert.Equal(expected.GreedyNewTokenIds, Ints(json["new_ids"]!));
        Assert.Equal(expected.GreedyNewText, json["text"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Logits_of_the_gguf_file_match_the_reference(int index)
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "expected.json")))!["cases"]![index]!;
        var result = KilnCli.Run("logits", "--model", GgufModels.Stories260K, "--ids", string.Join(" ", Cases[index].InputIds), "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        var actual = json["last_logits"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        var reference = expected["last_position_logits"]!.AsArray().Select(v => (float)v!.GetValue<double>()).ToArray();
        Assert.Equal(reference.Length, actual.Length);
        Assert.All(actual.Zip(reference), pair => Assert.InRange(pair.First - pair.Second, -1e-4f, 1e-4f));
        Assert.Equal(expected["last_position_argmax"]!.GetValue<int>(), json["argmax"]!.AsArray()[^1]!.GetValue<int>());
    }

    [Fact]
    public void Compile_verify_passes_every_transform_on_the_gguf()
    {
        // The verifier binds the graphs from before load_weights itself: once, as llama.cpp's q/k row order must be undone once.
        var result = KilnCli.Run("compile", "--model", GgufModels.Stories260K, "--verify", "--json", "--no-cache");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var transforms = JsonNode.Parse(result.Stdout)!["transforms"]!.AsArray();
        Assert.True(transforms.Count > 10);
        Assert.All(transforms, t => Assert.InRange(t!["verify_max_abs_difference"]!.GetValue<double>(), 0, 1e-3));
    }

    [Fact]
    public void Every_position_of_the_gguf_matches_the_hugging_face_folder()
    {
        using var folder = LoadedModel.Load(TestPaths.DefaultModel, OneThread);
        using var gguf = LoadedModel.Load(GgufModels.Stories260K, OneThread);
        var error = LargestDifference(folder, gguf);
        output.WriteLine($"largest logit difference over {Positions} positions: {error}");
        Assert.True(error <= 1e-5, $"largest difference {error}");
        // The q and k rows came back from llama.cpp's order through the recipe, and still fuse with v.
        var qkv = gguf.Graph.Parameters.Single(p => p.Name == "model.layers.0.self_attn.qkv_proj.weight");
        Assert.Equal("source(model.layers.0.self_attn.q_proj.weight, model.layers.0.self_attn.k_proj.weight, model.layers.0.self_attn.v_proj.weight) " +
            "|> deinterleave_rows(group=8, only=[0, 1]) |> concat(dim=0)", qkv.Recipe.ToString());
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, "int8")]
    [InlineData(GgmlType.Q4_0, "int4_sym")]
    public void Stored_blocks_give_exactly_the_logits_of_kiln_quantizing_the_folder(GgmlType type, string scheme)
    {
        // Every matrix whose rows are whole blocks in blocks (ffn_down's 172 columns are not: F32, as llama.cpp
        // would fall back), the embedding table in F32; --quantize then packs ffn_down as it packs the folder's.
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File($"stories260K-{type}.gguf"), GgufModels.LinearsIn(type));
        var pipeline = PipelineConfig.Load(null, [$"quantize_weights.scheme={scheme}"]);
        using var folder = LoadedModel.Load(TestPaths.DefaultModel, OneThread, pipeline);
        using var gguf = LoadedModel.Load(path, OneThread, pipeline);
        var error = LargestDifference(folder, gguf);
        output.WriteLine($"{type} GGUF against the folder with --quantize {scheme}: largest logit difference {error}");
        Assert.Equal(0, error);
        Assert.Equal(Count(folder, "quantized_linear"), Count(gguf, "quantized_linear"));
        Assert.Equal(Count(folder, "matmul_nbits"), Count(gguf, "matmul_nbits"));
        AssertBlocksReadAsStored(gguf, QuantSchemes.TryParse(scheme, out var s) ? s : throw new ArgumentException(scheme));
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 0.6, true)]
    [InlineData(GgmlType.Q4_0, 9.0, true)]
    [InlineData(GgmlType.Q4_0, 9.0, false)]
    public void Stored_blocks_run_quantized_without_quantize_set(GgmlType type, double bound, bool matMulNBits)
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File($"stories260K-{type}.gguf"), GgufModels.LinearsIn(type));
        using var folder = LoadedModel.Load(TestPaths.DefaultModel, OneThread);
        using var gguf = LoadedModel.Load(path, OneThread, PipelineConfig.Load(null, [$"use_matmul_nbits.enabled={(matMulNBits ? "true" : "false")}"]));
        var error = LargestDifference(folder, gguf);
        output.WriteLine($"{type} GGUF, no --quantize, use_matmul_nbits {matMulNBits}, against the float32 folder: largest logit difference {error}");
        Assert.InRange(error, 1e-3, bound);
        // q/k/v, o and gate/up of five layers and the output layer (Q4_0 ones on MatMulNBits where enabled); ffn_down stays float.
        Assert.Equal(5 * 3 + 1, Count(gguf, "quantized_linear") + Count(gguf, "matmul_nbits"));
        Assert.Equal(type == GgmlType.Q4_0 && matMulNBits ? 16 : 0, Count(gguf, "matmul_nbits"));
        AssertBlocksReadAsStored(gguf, type == GgmlType.Q8_0 ? QuantScheme.Int8 : QuantScheme.Int4Sym);
    }

    [Theory]
    [InlineData(GgmlType.F16, 0.05)]
    [InlineData(GgmlType.BF16, 0.3)]
    public void Sixteen_bit_tensors_are_read_as_stored(GgmlType type, double bound)
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File($"stories260K-{type}.gguf"), t => t.Dims.Length == 2 ? type : GgmlType.F32);
        using var folder = LoadedModel.Load(TestPaths.DefaultModel, OneThread);
        using var gguf = LoadedModel.Load(path, OneThread);
        var error = LargestDifference(folder, gguf);
        output.WriteLine($"{type} GGUF against the float32 folder: largest logit difference {error}");
        Assert.InRange(error, 1e-6, bound);
        var dtype = type == GgmlType.F16 ? DType.F16 : DType.BF16;
        Assert.Equal(dtype, gguf.Weights.Single(w => w.Name == "model.layers.0.self_attn.o_proj.weight").DType);
        Assert.Equal(dtype, gguf.Weights.Single(w => w.Name == "lm_head.weight").DType);
    }

    [Fact]
    public void A_tied_embedding_in_blocks_is_dequantized_for_the_lookup_and_read_as_stored_by_the_output_layer()
    {
        // No output.weight: llama.cpp's layout for a tied embedding.
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        var untied = dir.File("untied.gguf");
        GgufWriter.Write(untied, metadata, [.. tensors.Where(t => t.Name != "output.weight")]);
        var path = GgufModels.Convert(untied, dir.File("tied-q8_0.gguf"), t => t.Name == "token_embd.weight" ? GgmlType.Q8_0 : GgmlType.F32);
        using var gguf = LoadedModel.Load(path, OneThread);
        Assert.Equal("source(model.embed_tokens.weight) |> dequantize(int8)", gguf.Graph.Parameters.Single(p => p.Name == "model.embed_tokens.weight").Recipe.ToString());
        var packed = gguf.Weights.Single(w => w.Name == "model.embed_tokens.weight.int8");
        Assert.False(packed.IsCopy);
        using var folder = LoadedModel.Load(TestPaths.DefaultModel, OneThread);
        var error = LargestDifference(folder, gguf);
        output.WriteLine($"Q8_0 tied embedding against the float32 folder: largest logit difference {error}");
        Assert.InRange(error, 1e-4, 0.6);
    }

    // Every parameter made from block tensors is their bytes, never dequantized nor quantized again: for Kiln's kernels u8
    // views of the file (those made from one tensor), for MatMulNBits its data (u8) and scales (f32) re-laid from them.
    private static void AssertBlocksReadAsStored(LoadedModel model, QuantScheme scheme)
    {
        var fromBlocks = model.Graph.Parameters.Where(p => p.Recipe.Sources.All(s => model.Checkpoint.Tensors[s].Blocks is not null)).ToList();
        Assert.NotEmpty(fromBlocks);
        foreach (var parameter in fromBlocks)
        {
            Assert.Equal(parameter.Recipe.Steps is [.., NBitsLayoutStep { Part: NBitsPart.Scales }] ? DType.F32 : DType.U8, parameter.Value.DType);
            Assert.DoesNotContain(parameter.Recipe.Steps, s => s is DequantizeStep or QuantizeStep);
            Assert.All(parameter.Recipe.Sources, s => Assert.Equal(scheme, model.Checkpoint.Tensors[s].Blocks));
        }
        var viewed = new[] { "model.layers.0.self_attn.o_proj.weight", "lm_head.weight" };
        var onMatMulNBits = model.Graph.Nodes.Any(n => n.Op == "matmul_nbits");
        Assert.Equal(onMatMulNBits ? 0 : 2, model.Weights.Count(w => viewed.Contains(w.Name)));
        foreach (var weight in model.Weights.Where(w => viewed.Contains(w.Name))) Assert.False(weight.IsCopy, $"{weight.Name} was copied");
    }

    private static int Count(LoadedModel model, string op) => model.Graph.Nodes.Count(n => n.Op == op);

    private static int Positions => Cases.Sum(c => c.InputIds.Length + c.GreedyNewTokenIds.Length);

    // The largest |a − b| over every position of each case's prompt and greedy continuation.
    private static double LargestDifference(LoadedModel a, LoadedModel b)
    {
        double largest = 0;
        foreach (var c in Cases)
        {
            long[] ids = [.. c.InputIds.Concat(c.GreedyNewTokenIds)];
            long[] positions = [.. Enumerable.Range(0, ids.Length).Select(i => (long)i)];
            var (x, y) = (a.Forward(ids, positions), b.Forward(ids, positions));
            for (var i = 0; i < x.Length; i++) largest = Math.Max(largest, Math.Abs(x[i] - y[i]));
        }
        return largest;
    }

    private static int[] Ints(JsonNode node) => [.. node.AsArray().Select(v => v!.GetValue<int>())];
}
