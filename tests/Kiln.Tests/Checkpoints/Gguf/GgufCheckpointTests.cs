using Kiln.Checkpoints;
using Kiln.Checkpoints.Gguf;
using Kiln.Weights;

namespace Kiln.Tests.Checkpoints.Gguf;

/// <summary>A GGUF file as a checkpoint: the config its metadata stands for, its tensors under Hugging Face names, where --model finds it, and what it refuses.</summary>
public sealed class GgufCheckpointTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void The_metadata_is_the_config_of_the_folder()
    {
        using var gguf = Checkpoint.Open(GgufModels.Stories260K);
        using var folder = Checkpoint.Open(TestPaths.DefaultModel);
        double Number(Checkpoint c, string field) => double.Parse(c.Config[field]!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        foreach (var field in new[] { "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "rope_theta", "bos_token_id" })
            Assert.True(Number(folder, field) == Number(gguf, field), field);
        Assert.Equal((float)Number(folder, "rms_norm_eps"), (float)Number(gguf, "rms_norm_eps"));
        Assert.Equal("[2]", gguf.Config["eos_token_id"]!.ToJsonString());
        Assert.Equal(("llama", "[\"LlamaForCausalLM\"]", "silu"), (gguf.Config["model_type"]!.GetValue<string>(), gguf.Config["architectures"]!.ToJsonString(), gguf.Config["hidden_act"]!.GetValue<string>()));
        // llama2.c's converter wrote its own context length, and the output layer as a tensor of its own.
        Assert.Equal(2048, Number(gguf, "max_position_embeddings"));
        Assert.False(gguf.Config["tie_word_embeddings"]!.GetValue<bool>());
        Assert.Equal(GgufModels.Stories260K, gguf.ConfigPath);
        Assert.Equal(Path.GetDirectoryName(GgufModels.Stories260K), gguf.Directory);
        Assert.Equal([("stories260K.gguf", new FileInfo(GgufModels.Stories260K).Length)], gguf.WeightFiles);
    }

    [Fact]
    public void Tensors_have_their_hugging_face_names_and_shapes_and_q_k_their_row_order_step()
    {
        using var gguf = Checkpoint.Open(GgufModels.Stories260K);
        using var folder = Checkpoint.Open(TestPaths.DefaultModel);
        Assert.Equal([.. folder.Tensors.Keys.Append("lm_head.weight").Order(StringComparer.Ordinal)], gguf.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in folder.Tensors)
        {
            Assert.Equal(tensor.Shape, gguf.Tensors[name].Shape);
            var permuted = name.Contains("q_proj", StringComparison.Ordinal) || name.Contains("k_proj", StringComparison.Ordinal);
            Assert.Equal(permuted ? ["deinterleave_rows(group=8)"] : Array.Empty<string>(), gguf.StorageSteps(name).Select(s => s.ToString()));
            // Apart from q and k, the bytes are the folder's.
            if (!permuted) Assert.True(folder.GetBytes(name).SequenceEqual(gguf.GetBytes(name)), name);
        }
        Assert.True(gguf.GetBytes("lm_head.weight").SequenceEqual(folder.GetBytes("model.embed_tokens.weight")));
    }

    [Fact]
    public void Block_tensors_are_rows_of_kilns_blocks()
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File("q.gguf"), t => t.Name switch
        {
            "blk.0.attn_output.weight" => GgmlType.Q4_0,
            var n when n.EndsWith("attn_q.weight", StringComparison.Ordinal) => GgmlType.Q8_0,
            _ => GgmlType.F32,
        });
        using var checkpoint = Checkpoint.Open(path);
        var q = checkpoint.Tensors["model.layers.0.self_attn.q_proj.weight"];
        Assert.Equal((Kiln.Graph.DType.U8, QuantScheme.Int8, "q8_0"), (q.DType, q.Blocks, q.StoredFormat));
        Assert.Equal([64L, 2 * 34], q.Shape);
        Assert.Equal([64L, 64], q.WeightShape);
        var o = checkpoint.Tensors["model.layers.0.self_attn.o_proj.weight"];
        Assert.Equal((QuantScheme.Int4Sym, "q4_0", 64L * 2 * 18), (o.Blocks, o.StoredFormat, o.ByteLength));
        Assert.Equal(64 * 64, o.WeightCount);
    }

    [Fact]
    public void Model_finds_a_file_or_the_one_gguf_of_a_folder_without_config_json()
    {
        Assert.Equal(GgufModels.Stories260K, GgufCheckpoint.Find(GgufModels.Stories260K));
        Assert.Equal(GgufModels.Stories260K, GgufCheckpoint.Find(Path.GetDirectoryName(GgufModels.Stories260K)!));
        Assert.Null(GgufCheckpoint.Find(TestPaths.DefaultModel));
        Assert.Null(GgufCheckpoint.Find(dir.Path));
        Assert.Null(GgufCheckpoint.Find(dir.File("absent")));

        File.Copy(GgufModels.Stories260K, dir.File("a.gguf"));
        File.Copy(GgufModels.Stories260K, dir.File("b.gguf"));
        Assert.Equal($"{dir.Path}: holds 2 GGUF files (a.gguf, b.gguf) and no config.json; pass one with --model FILE.gguf",
            Assert.Throws<KilnException>(() => Checkpoint.Open(dir.Path)).Message);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "architecture", "metadata 'general.architecture': architecture 'gpt2' is not supported (supported: llama, gemma)" },
        { "no architecture", "metadata 'general.architecture': is required" },
        { "block count", "metadata 'llama.block_count': is required" },
        { "block count type", "metadata 'llama.block_count': expected an integer, found str" },
        { "experts", "metadata 'llama.expert_count': mixture-of-experts models are not supported" },
        { "rotary", "metadata 'llama.rope.dimension_count': 4 rotary channels of a head of 8 is not supported" },
        { "rope scaling", "metadata 'llama.rope.scaling.type': rope scaling 'yarn' is not supported (supported: none, linear)" },
        { "unknown tensor", "blk.0.attn_qkv.weight: not a tensor of a llama model" },
        { "rope freqs", "rope_freqs.weight: per-channel rotary frequency factors (Llama 3.1 rope scaling) are not supported" },
        { "heads", "num_key_value_heads: 3 does not divide num_attention_heads 8" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void What_kiln_cannot_run_is_refused_naming_the_file_and_key(string what, string expected)
    {
        GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
        GgufValue Str(string s) => new(GgufValueType.String, s);
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        void Set(string key, GgufValue? value)
        {
            metadata.RemoveAll(e => e.Key == key);
            if (value is not null) metadata.Add(new(key, value));
        }
        switch (what)
        {
            case "architecture": Set("general.architecture", Str("gpt2")); break;
            case "no architecture": Set("general.architecture", null); break;
            case "block count": Set("llama.block_count", null); break;
            case "block count type": Set("llama.block_count", Str("5")); break;
            case "experts": Set("llama.expert_count", U32(8)); break;
            case "rotary": Set("llama.rope.dimension_count", U32(4)); break;
            case "rope scaling": Set("llama.rope.scaling.type", Str("yarn")); break;
            case "unknown tensor": tensors[3] = tensors[3] with { Name = "blk.0.attn_qkv.weight" }; break;
            case "rope freqs": tensors.Add(new GgufTensorData("rope_freqs.weight", [4], GgmlType.F32, new byte[16])); break;
            default: Set("llama.attention.head_count_kv", U32(3)); break;
        }
        var path = dir.File("bad.gguf");
        GgufWriter.Write(path, metadata, tensors);
        // Opening and exporting is what every command does first.
        var e = Assert.Throws<KilnException>(() =>
        {
            using var checkpoint = Checkpoint.Open(path);
            Kiln.Compile.ModelCompiler.Export(checkpoint);
        });
        Assert.Equal($"{path}: {expected}", e.Message[..Math.Min(e.Message.Length, path.Length + 2 + expected.Length)]);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("missing", "bad.gguf: blk.1.ffn_up.weight (model.layers.1.mlp.up_proj.weight): tensor is missing (its metadata implies it)")]
    [InlineData("shape", "bad.gguf: blk.0.attn_v.weight (model.layers.0.self_attn.v_proj.weight): shape [64, 32] disagrees with its metadata, which implies [32, 64]")]
    public void Tensors_are_checked_against_the_metadata_naming_both_names(string what, string expected)
    {
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        if (what == "missing") tensors.RemoveAll(t => t.Name == "blk.1.ffn_up.weight");
        else tensors[tensors.FindIndex(t => t.Name == "blk.0.attn_v.weight")] = tensors.Single(t => t.Name == "blk.0.attn_v.weight") with { Dims = [32, 64] };
        var path = dir.File("bad.gguf");
        GgufWriter.Write(path, metadata, tensors);
        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(expected, Assert.Throws<KilnException>(() => Kiln.Compile.ModelCompiler.Compile(checkpoint, Kiln.Transforms.PipelineConfig.Load())).Message);
    }

    [Fact]
    public void The_cli_refuses_with_exit_2_and_one_line()
    {
        var (metadata, tensors) = GgufModels.Read(GgufModels.Stories260K);
        var path = dir.File("phi.gguf");
        GgufWriter.Write(path, [.. metadata.Select(e => e.Key == "general.architecture" ? new(e.Key, new GgufValue(GgufValueType.String, "phi3")) : e)], tensors);
        foreach (var args in new[] { new[] { "generate", "--model", path, "--prompt", "Once", "--no-cache" }, ["inspect", "--model", path], ["compile", "--model", path, "--no-cache"] })
        {
            var result = KilnCli.Run(args);
            Assert.Equal(2, result.ExitCode);
            Assert.Equal($"kiln: error: {path}: metadata 'general.architecture': architecture 'phi3' is not supported (supported: llama, gemma)\n", result.Stderr.Replace("kiln: cache off (disabled)\n", ""));
        }
    }
}
