using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Checkpoints;

public sealed class RandomCheckpointWriterTests
{
    private static TestModelOptions Small(DType dtype = DType.F32, int seed = 1) =>
        new("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48, Vocab: 50, DType: dtype, Seed: seed);

    [Fact]
    public void WritesACheckpointThatReopensWithLlamaShapes()
    {
        using var dir = new TempDir();
        var outDir = dir.File("model");
        RandomCheckpointWriter.Write(Small(), outDir);

        using var checkpoint = Checkpoint.Open(outDir);

        Assert.Equal(3 + 9 * 2, checkpoint.Tensors.Count);
        Assert.Equal([50L, 32], checkpoint.Tensors["model.embed_tokens.weight"].Shape);
        Assert.Equal([50L, 32], checkpoint.Tensors["lm_head.weight"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.norm.weight"].Shape);
        Assert.Equal([32L, 32], checkpoint.Tensors["model.layers.1.self_attn.q_proj.weight"].Shape);
        Assert.Equal([16L, 32], checkpoint.Tensors["model.layers.1.self_attn.k_proj.weight"].Shape);
        Assert.Equal([16L, 32], checkpoint.Tensors["model.layers.1.self_attn.v_proj.weight"].Shape);
        Assert.Equal([32L, 32], checkpoint.Tensors["model.layers.1.self_attn.o_proj.weight"].Shape);
        Assert.Equal([48L, 32], checkpoint.Tensors["model.layers.0.mlp.gate_proj.weight"].Shape);
        Assert.Equal([48L, 32], checkpoint.Tensors["model.layers.0.mlp.up_proj.weight"].Shape);
        Assert.Equal([32L, 48], checkpoint.Tensors["model.layers.0.mlp.down_proj.weight"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.0.post_attention_layernorm.weight"].Shape);
        Assert.All(checkpoint.Tensors.Values, t => Assert.Equal(DType.F32, t.DType));
        using (var weights = SafetensorsFile.Open(checkpoint.FileOf(checkpoint.Tensors["lm_head.weight"]).Path)) Assert.Equal("pt", weights.Metadata["format"]);
        Assert.Equal(2, (int)checkpoint.GenerationConfig!["eos_token_id"]!);
        Assert.Single(Directory.GetFileSystemEntries(dir.Path)); // no staging folder left behind
    }

    [Fact]
    public void ConfigReadsLikeTransformersLlamaConfig()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { RopeTheta = 500000, MaxPositions = 4096 }, dir.File("m"));

        var text = File.ReadAllText(dir.File("m/config.json"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));
        var config = checkpoint.Config;

        Assert.Equal("LlamaForCausalLM", (string)config["architectures"]![0]!);
        Assert.Equal("llama", (string)config["model_type"]!);
        Assert.Equal(32, (int)config["hidden_size"]!);
        Assert.Equal(48, (int)config["intermediate_size"]!);
        Assert.Equal(4, (int)config["num_attention_heads"]!);
        Assert.Equal(2, (int)config["num_key_value_heads"]!);
        Assert.Equal(2, (int)config["num_hidden_layers"]!);
        Assert.Equal(50, (int)config["vocab_size"]!);
        Assert.Equal(8, (int)config["head_dim"]!);
        Assert.Equal(4096, (int)config["max_position_embeddings"]!);
        Assert.Equal(1e-5, (double)config["rms_norm_eps"]!);
        Assert.Equal(500000.0, (double)config["rope_theta"]!);
        Assert.Null(config["rope_scaling"]);
        Assert.True(config.ContainsKey("rope_scaling"));
        Assert.False((bool)config["tie_word_embeddings"]!);
        Assert.Equal("float32", (string)config["torch_dtype"]!);
        Assert.Equal("silu", (string)config["hidden_act"]!);
        Assert.False((bool)config["attention_bias"]!);
        Assert.False((bool)config["mlp_bias"]!);
        Assert.Contains("\"rms_norm_eps\": 1e-05,", text);
        Assert.Contains("\"rope_theta\": 500000.0,", text);
        Assert.Equal(config.Select(p => p.Key).Order(StringComparer.Ordinal), config.Select(p => p.Key));
    }

    [Fact]
    public void SameSeedSameBytesOtherSeedOtherBytes()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small(seed: 5), dir.File("a"));
        RandomCheckpointWriter.Write(Small(seed: 5), dir.File("b"));
        RandomCheckpointWriter.Write(Small(seed: 6), dir.File("c"));

        byte[] Weights(string name) => File.ReadAllBytes(dir.File($"{name}/model.safetensors"));
        Assert.Equal(Weights("a"), Weights("b"));
        Assert.Equal(File.ReadAllText(dir.File("a/config.json")), File.ReadAllText(dir.File("b/config.json")));
        Assert.NotEqual(Weights("a"), Weights("c"));
        Assert.Equal(Weights("a").Length, Weights("c").Length);
    }

    [Fact]
    public void ValuesHaveTheIntendedScale()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { Vocab = 2000 }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));

        var embedding = MemoryMarshal.Cast<byte, float>(checkpoint.GetBytes("model.embed_tokens.weight")).ToArray();
        var mean = embedding.Average();
        var std = Math.Sqrt(embedding.Average(x => (x - mean) * (x - mean)));
        Assert.InRange(mean, -0.002, 0.002);
        Assert.InRange(std, 0.018, 0.022);
        Assert.All(MemoryMarshal.Cast<byte, float>(checkpoint.GetBytes("model.norm.weight")).ToArray(), g => Assert.InRange(g, 0.9f, 1.1f));
    }

    [Fact]
    public void BFloat16CheckpointsHoldTheRoundedValues()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small(DType.BF16), dir.File("bf16"));
        RandomCheckpointWriter.Write(Small(DType.F32), dir.File("f32"));
        using var bf16 = Checkpoint.Open(dir.File("bf16"));
        using var f32 = Checkpoint.Open(dir.File("f32"));

        Assert.Equal("bfloat16", (string)bf16.Config["torch_dtype"]!);
        Assert.All(bf16.Tensors.Values, t => Assert.Equal(DType.BF16, t.DType));
        const string name = "model.layers.0.self_attn.q_proj.weight";
        using var widened = RecipeExecutor.Execute(bf16, name, LoadRecipe.FromSource(name).Then(new CastStep(DType.F32)), DType.F32, [32, 32]);
        var rounded = new ushort[32 * 32];
        FloatConversion.SingleToBFloat16(MemoryMarshal.Cast<byte, float>(f32.GetBytes(name)), rounded);
        Assert.Equal(rounded, MemoryMarshal.Cast<byte, ushort>(bf16.GetBytes(name)).ToArray());
        Assert.All(MemoryMarshal.Cast<byte, float>(widened.Bytes).ToArray(), v => Assert.InRange(v, -0.04f, 0.04f));
    }

    [Fact]
    public void TiedEmbeddingsHaveNoOutputLayer()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { TieEmbeddings = true }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));

        Assert.False(checkpoint.Tensors.ContainsKey("lm_head.weight"));
        Assert.True((bool)checkpoint.Config["tie_word_embeddings"]!);
    }

    [Fact]
    public void WritesIntoAnEmptyExistingFolder()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("empty"));
        RandomCheckpointWriter.Write(Small(), dir.File("empty"));
        using var checkpoint = Checkpoint.Open(dir.File("empty"));
        Assert.NotEmpty(checkpoint.Tensors);
    }

    [Fact]
    public void RefusesANonEmptyFolder()
    {
        using var dir = new TempDir();
        var outDir = dir.File("taken");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "mine");

        var e = Assert.Throws<KilnException>(() => RandomCheckpointWriter.Write(Small(), outDir));

        Assert.StartsWith(outDir, e.Message);
        Assert.Contains("not empty", e.Message);
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(outDir).Select(Path.GetFileName));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData("family", "family")]
    [InlineData("layers", "layers")]
    [InlineData("heads", "heads")]
    [InlineData("odd-head-dim", "heads")]
    [InlineData("kv-heads", "kv_heads")]
    [InlineData("vocab", "vocab")]
    [InlineData("dtype", "dtype")]
    [InlineData("model-type", "model_type")]
    [InlineData("head-dim", "head_dim")]
    [InlineData("odd-explicit-head-dim", "head_dim")]
    [InlineData("mistral-attention-bias", "attention_bias")]
    [InlineData("qwen2-attention-bias", "attention_bias")]
    [InlineData("qwen3-mlp-bias", "mlp_bias")]
    [InlineData("llama-sliding-window", "sliding_window")]
    [InlineData("zero-sliding-window", "sliding_window")]
    [InlineData("mistral-rope-scaling", "rope_scaling")]
    [InlineData("rope-factor", "rope_scaling")]
    [InlineData("llama3-bands", "rope_scaling")]
    [InlineData("weight-scale", "weight_scale")]
    public void InvalidOptionsNameTheOption(string fault, string option)
    {
        var options = fault switch
        {
            "family" => Small() with { Family = "bloom" },
            "layers" => Small() with { Layers = 0 },
            "heads" => Small() with { Heads = 5 },
            "odd-head-dim" => Small() with { Hidden = 36, Heads = 12, KvHeads = 4 },
            "kv-heads" => Small() with { KvHeads = 3 },
            "vocab" => Small() with { Vocab = -1 },
            "dtype" => Small(DType.I32),
            "model-type" => Small() with { ModelType = "gemma" },
            "head-dim" => Small() with { ExplicitHeadDim = 0 },
            "odd-explicit-head-dim" => Small() with { ExplicitHeadDim = 7 },
            "mistral-attention-bias" => Small() with { ModelType = "mistral", AttentionBias = true },
            "qwen2-attention-bias" => Small() with { ModelType = "qwen2", AttentionBias = true },
            "qwen3-mlp-bias" => Small() with { ModelType = "qwen3", MlpBias = true },
            "llama-sliding-window" => Small() with { SlidingWindow = 4 },
            "zero-sliding-window" => Small() with { ModelType = "mistral", SlidingWindow = 0 },
            "mistral-rope-scaling" => Small() with { ModelType = "mistral", RopeScaling = TestRopeScaling.Linear(2) },
            "rope-factor" => Small() with { RopeScaling = TestRopeScaling.Linear(0) },
            "llama3-bands" => Small() with { RopeScaling = TestRopeScaling.Llama3(8, 4, 1, 8192) },
            _ => Small() with { WeightScale = 0 },
        };
        using var dir = new TempDir();

        var e = Assert.Throws<KilnException>(() => RandomCheckpointWriter.Write(options, dir.File("m")));

        Assert.StartsWith(option + ":", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void Qwen3HasPerHeadNormsAndAnExplicitHeadDim()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { ModelType = "qwen3", ExplicitHeadDim = 16, AttentionBias = true }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));
        var config = checkpoint.Config;

        Assert.Equal("Qwen3ForCausalLM", (string)config["architectures"]![0]!);
        Assert.Equal("qwen3", (string)config["model_type"]!);
        Assert.Equal(16, (int)config["head_dim"]!);
        Assert.True((bool)config["attention_bias"]!);
        Assert.False((bool)config["use_sliding_window"]!);
        Assert.Equal(1e-6, (double)config["rms_norm_eps"]!);
        Assert.Equal([16L], checkpoint.Tensors["model.layers.1.self_attn.q_norm.weight"].Shape);
        Assert.Equal([16L], checkpoint.Tensors["model.layers.1.self_attn.k_norm.weight"].Shape);
        Assert.Equal([64L, 32], checkpoint.Tensors["model.layers.0.self_attn.q_proj.weight"].Shape);
        Assert.Equal([64L], checkpoint.Tensors["model.layers.0.self_attn.q_proj.bias"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.0.self_attn.k_proj.bias"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.0.self_attn.v_proj.bias"].Shape);
        Assert.Equal([32L, 64], checkpoint.Tensors["model.layers.0.self_attn.o_proj.weight"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.0.self_attn.o_proj.bias"].Shape);
        Assert.Equal(3 + (9 + 2 + 4) * 2, checkpoint.Tensors.Count);
    }

    [Fact]
    public void Qwen2HasQkvBiasesButNoOutputBias()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { ModelType = "qwen2" }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));

        Assert.Equal("Qwen2ForCausalLM", (string)checkpoint.Config["architectures"]![0]!);
        Assert.False(checkpoint.Config.ContainsKey("head_dim"));
        Assert.False(checkpoint.Config.ContainsKey("attention_bias"));
        Assert.Equal([32L], checkpoint.Tensors["model.layers.0.self_attn.q_proj.bias"].Shape);
        Assert.Equal([16L], checkpoint.Tensors["model.layers.0.self_attn.k_proj.bias"].Shape);
        Assert.Equal([16L], checkpoint.Tensors["model.layers.0.self_attn.v_proj.bias"].Shape);
        Assert.False(checkpoint.Tensors.ContainsKey("model.layers.0.self_attn.o_proj.bias"));
        Assert.Equal(3 + (9 + 3) * 2, checkpoint.Tensors.Count);
    }

    [Fact]
    public void LlamaBiasesAndRopeScalingAreWrittenAsTransformersReadsThem()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { AttentionBias = true, MlpBias = true, RopeScaling = TestRopeScaling.Llama3(8, 1, 4, 8192) }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));
        var scaling = checkpoint.Config["rope_scaling"]!.AsObject();

        Assert.True((bool)checkpoint.Config["attention_bias"]!);
        Assert.True((bool)checkpoint.Config["mlp_bias"]!);
        Assert.Equal("llama3", (string)scaling["rope_type"]!);
        Assert.Equal(8.0, (double)scaling["factor"]!);
        Assert.Equal(1.0, (double)scaling["low_freq_factor"]!);
        Assert.Equal(4.0, (double)scaling["high_freq_factor"]!);
        Assert.Equal(8192, (int)scaling["original_max_position_embeddings"]!);
        Assert.Equal([48L], checkpoint.Tensors["model.layers.1.mlp.gate_proj.bias"].Shape);
        Assert.Equal([48L], checkpoint.Tensors["model.layers.1.mlp.up_proj.bias"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.1.mlp.down_proj.bias"].Shape);
        Assert.Equal([32L], checkpoint.Tensors["model.layers.1.self_attn.o_proj.bias"].Shape);
        Assert.Equal(3 + (9 + 7) * 2, checkpoint.Tensors.Count);
    }

    [Fact]
    public void MistralHasASlidingWindowAndNoBiases()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { ModelType = "mistral", SlidingWindow = 4 }, dir.File("window"));
        RandomCheckpointWriter.Write(Small() with { ModelType = "mistral" }, dir.File("none"));
        using var window = Checkpoint.Open(dir.File("window"));
        using var none = Checkpoint.Open(dir.File("none"));

        Assert.Equal("MistralForCausalLM", (string)window.Config["architectures"]![0]!);
        Assert.Equal(4, (int)window.Config["sliding_window"]!);
        Assert.True(none.Config.ContainsKey("sliding_window"));
        Assert.Null(none.Config["sliding_window"]);
        Assert.False(window.Config.ContainsKey("rope_scaling"));
        Assert.DoesNotContain(window.Tensors.Keys, name => name.EndsWith(".bias", StringComparison.Ordinal));
    }

    [Fact]
    public void WeightScaleWidensWeightsBiasesAndGains()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small() with { Vocab = 2000, WeightScale = 10, AttentionBias = true }, dir.File("m"));
        using var checkpoint = Checkpoint.Open(dir.File("m"));
        float[] Values(string name) => MemoryMarshal.Cast<byte, float>(checkpoint.GetBytes(name)).ToArray();
        static double Std(float[] values) => Math.Sqrt(values.Average(x => x * (double)x));

        Assert.InRange(Std(Values("model.embed_tokens.weight")), 0.18, 0.22);
        Assert.InRange((double)checkpoint.Config["initializer_range"]!, 0.2 - 1e-12, 0.2 + 1e-12);
        var gains = Values("model.layers.0.input_layernorm.weight");
        Assert.All(gains, g => Assert.InRange(g, 0f, 2f));
        Assert.True(gains.Max() - gains.Min() > 1, "norm gains should spread over most of [0, 2]");
        Assert.InRange(Std(Values("model.layers.0.self_attn.q_proj.bias")), 0.1, 0.3);
    }

    [Theory]
    [InlineData("linear:4", "linear", 4, 0, 0, 0)]
    [InlineData("llama3:8,1,4,8192", "llama3", 8, 1, 4, 8192)]
    [InlineData("llama3:32,1.5,4.25,8192", "llama3", 32, 1.5, 4.25, 8192)]
    public void RopeScalingParsesTheCommandLineForm(string text, string type, double factor, double low, double high, int original)
    {
        Assert.Equal(new TestRopeScaling(type, factor, low, high, original), TestRopeScaling.Parse(text));
    }

    [Theory]
    [InlineData("yarn:4")]
    [InlineData("linear")]
    [InlineData("linear:x")]
    [InlineData("llama3:8,1,4")]
    public void RopeScalingRejectsOtherForms(string text)
    {
        var e = Assert.Throws<KilnException>(() => TestRopeScaling.Parse(text));
        Assert.StartsWith("rope_scaling:", e.Message);
    }

    public static TheoryData<string> LlamaPresets => ["8B", "70B"];

    [Theory]
    [MemberData(nameof(LlamaPresets))]
    public void SparseCheckpointsHaveRealHeadersZeroWeightsAndUseNoDisk(string preset)
    {
        var options = preset == "8B" ? TestModelOptions.Llama3_8B : TestModelOptions.Llama3_70B;
        using var dir = new TempDir();
        var outDir = dir.File("m");
        RandomCheckpointWriter.Write(options, outDir, sparse: true);

        using var checkpoint = Checkpoint.Open(outDir);
        var expected = RandomCheckpointWriter.Tensors(options);
        Assert.Equal(expected.Count, checkpoint.Tensors.Count);
        foreach (var tensor in expected)
        {
            Assert.Equal(tensor.Shape, checkpoint.Tensors[tensor.Name].Shape);
            Assert.Equal(DType.BF16, checkpoint.Tensors[tensor.Name].DType);
        }
        var dataBytes = expected.Sum(t => t.ByteLength);
        var file = checkpoint.WeightFiles.Single();
        var headerBytes = file.Size - dataBytes;
        Assert.InRange(headerBytes, 8, 1 << 20);
        Assert.Equal(options.Layers == 80 ? 70_553_706_496L : 8_030_261_248L, dataBytes / 2); // parameters of Llama 3.1 8B / 70B
        Assert.Equal(expected.Count, Kiln.Compile.ModelCompiler.Export(checkpoint).Parameters.Count);

        var last = checkpoint.Tensors.Values.MaxBy(t => t.DataOffset)!;
        Assert.Equal(file.Size, last.DataOffset + last.ByteLength);
        Assert.All(checkpoint.Tensors.Values.Where(t => t.ByteLength < 1 << 20), t =>
            Assert.True(checkpoint.FileOf(t).GetBytes(t).IndexOfAnyExcept((byte)0) < 0, $"{t.Name} is not all zero"));
        Assert.InRange(AllocatedBytes(Path.Combine(outDir, Checkpoint.SingleWeightsFileName)), 0, 1 << 20);
    }

    // Disk blocks actually used, as du counts them (st_blocks), not the file's length.
    private static long AllocatedBytes(string path)
    {
        using var du = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("du", ["--block-size=1", path]) { RedirectStandardOutput = true })!;
        var output = du.StandardOutput.ReadToEnd();
        du.WaitForExit();
        Assert.Equal(0, du.ExitCode);
        return long.Parse(output.Split('\t')[0]);
    }
}
