using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Tests.EndToEnd;

/// <summary>`kiln inspect` names each tensor's stored dtype and the dtype the compiled graph reads it as.</summary>
public sealed class InspectCommandTests
{
    [Fact]
    public void A_bf16_checkpoint_keeps_its_matrices_bf16_and_upcasts_its_norm_gains()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48,
            Vocab: 100, DType.BF16, Seed: 1), dir.Path);

        var formats = Formats(KilnCli.Run("inspect", "--json", "--model", dir.Path));
        var upcast = Formats(KilnCli.Run("inspect", "--json", "--model", dir.Path, "--set", "use_kiln_linear.weight_dtype=f32"));

        Assert.Equal(2 * 9 + 3, formats.Count);
        Assert.All(formats, f => Assert.Equal("bf16", f.Value.Stored));
        Assert.Equal(("bf16", "bf16"), formats["model.layers.1.mlp.down_proj.weight"]);
        Assert.Equal(("bf16", "bf16"), formats["model.embed_tokens.weight"]);
        Assert.Equal(("bf16", "bf16"), formats["lm_head.weight"]);
        Assert.Equal(("bf16", "f32"), formats["model.norm.weight"]);
        Assert.All(upcast, f => Assert.Equal("f32", f.Value.Read));
    }

    [Fact]
    public void The_default_model_reads_every_tensor_as_stored()
    {
        var formats = Formats(KilnCli.Run("inspect", "--json"));
        Assert.NotEmpty(formats);
        Assert.All(formats, f => Assert.Equal(("f32", "f32"), f.Value));
    }

    [Fact]
    public void The_table_names_each_tensor_with_its_formats()
    {
        var result = KilnCli.Run("inspect");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("read as", result.Stdout);
        Assert.Contains("model.layers.4.mlp.down_proj.weight", result.Stdout);
        Assert.Contains("[64, 172]", result.Stdout);
    }

    [Theory]
    [InlineData("int8", "int8")]
    [InlineData("int4", "int4")]
    [InlineData("int4_sym", "int4_sym")]
    [InlineData("int4_sym use_matmul_nbits.enabled=true", "int4_sym (MatMulNBits)")]
    public void Quantized_weights_are_read_in_their_scheme(string settings, string read)
    {
        var sets = settings.Split(' ');
        var formats = Formats(KilnCli.Run(["inspect", "--json", "--set", $"quantize_weights.scheme={sets[0]}", .. sets.Skip(1).SelectMany(s => new[] { "--set", s })]));
        Assert.Equal(("f32", read), formats["model.layers.0.mlp.down_proj.weight"]);
        Assert.Equal(("f32", read), formats["model.layers.0.self_attn.q_proj.weight"]);
        // The tied embedding: its lookup reads the float table, the output layer a packed copy.
        Assert.Equal(("f32", $"f32, {read}"), formats["model.embed_tokens.weight"]);
        Assert.Equal(("f32", "f32"), formats["model.norm.weight"]);
    }

    private static Dictionary<string, (string Stored, string Read)> Formats(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        return json.RootElement.GetProperty("tensor_formats").EnumerateArray().ToDictionary(
            t => t.GetProperty("name").GetString()!,
            t => (t.GetProperty("stored").GetString()!, t.GetProperty("read").GetString()!));
    }
}
