using Kiln.Checkpoints;

namespace Kiln.Tests.EndToEnd;

/// <summary>`kiln testmodel` with the variant options, through the real command line.</summary>
public sealed class RandomCheckpointCliTests
{
    [Fact]
    public void Writes_a_variant_checkpoint_from_the_command_line()
    {
        using var dir = new TempDir();
        var result = KilnCli.Run("testmodel", "--model-type", "qwen3", "--layers", "1", "--hidden", "32", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "48", "--vocab", "50", "--head-dim", "16", "--attention-bias", "--rope-theta", "1000000",
            "--rope-scaling", "linear:2", "--weight-scale", "10", "--tie-embeddings", "--out", dir.File("m"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var checkpoint = Checkpoint.Open(dir.File("m"));
        var config = checkpoint.Config;
        Assert.Equal("qwen3", (string)config["model_type"]!);
        Assert.Equal(16, (int)config["head_dim"]!);
        Assert.True((bool)config["attention_bias"]!);
        Assert.True((bool)config["tie_word_embeddings"]!);
        Assert.Equal(1000000.0, (double)config["rope_theta"]!);
        Assert.Equal("linear", (string)config["rope_scaling"]!["rope_type"]!);
        Assert.Equal(2.0, (double)config["rope_scaling"]!["factor"]!);
        Assert.Contains("model.layers.0.self_attn.k_norm.weight", checkpoint.Tensors.Keys);
    }

    [Theory]
    [InlineData("--rope-scaling", "llama3:8,1")]
    [InlineData("--sliding-window", "4")]
    [InlineData("--model-type", "gpt2")]
    public void A_bad_variant_option_is_a_user_error_naming_it(string option, string value)
    {
        using var dir = new TempDir();
        var result = KilnCli.Run("testmodel", "--layers", "1", "--hidden", "32", "--heads", "4", "--intermediate", "48", "--vocab", "50",
            option, value, "--out", dir.File("m"));

        Assert.Equal(2, result.ExitCode);
        // Named as the library names the setting: --rope-scaling is rope_scaling.
        Assert.Contains(option.TrimStart('-').Replace('-', '_') + ":", result.Stderr);
        Assert.False(Directory.Exists(dir.File("m")));
    }
}
