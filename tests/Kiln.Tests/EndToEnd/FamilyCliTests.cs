using System.Text.Json.Nodes;
using Kiln.Checkpoints;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// Each family beyond Llama through the real command line, on a checkpoint `kiln testmodel --family` writes
/// from the family's description: the checkpoint holds the family's tensors, `compile --verify` passes,
/// `--tp 2` (separate processes joined by Open MPI) gives the logits of one process, and `--quantize int8`
/// stays close to them.
/// </summary>
public sealed class FamilyCliTests
{
    public static TheoryData<string, string> Families => new()
    {
        // family, a tensor only that family's checkpoint holds
        { "phi3", "model.layers.0.self_attn.qkv_proj.weight" },
        { "gemma", "model.layers.0.mlp.gate_proj.weight" },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Testmodel_compile_verify_tensor_parallel_and_quantize_work_on_the_family(string family, string tensor)
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        // head_dim 16 (the cached kernel's rotary needs a multiple of 16), 4 heads over 2 key/value heads.
        var written = KilnCli.Run("testmodel", "--family", family, "--layers", "2", "--hidden", "64", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "96", "--vocab", "100", "--max-positions", "64", "--weight-scale", "4", "--out", model);
        Assert.True(written.ExitCode == 0, written.Stderr);
        using (var checkpoint = Checkpoint.Open(model))
        {
            Assert.Equal(family, (string)checkpoint.Config["model_type"]!);
            Assert.Contains(tensor, checkpoint.Tensors.Keys);
        }

        var verify = KilnCli.Run("compile", "--model", model, "--verify", "--json", "--no-cache");
        Assert.True(verify.ExitCode == 0, verify.Stderr);
        foreach (var t in JsonNode.Parse(verify.Stdout)!["transforms"]!.AsArray())
            Assert.InRange(t!["verify_max_abs_difference"]!.GetValue<double>(), 0, 1e-3);

        string[] args = ["logits", "--model", model, "--ids", "1 5 9 13 17 21 25", "--json", "--no-cache"];
        var one = KilnCli.Run(args);
        Assert.True(one.ExitCode == 0, one.Stderr);
        var two = KilnCli.Run([.. args, "--tp", "2"]);
        Assert.True(two.ExitCode == 0, two.Stderr);
        var expected = LastLogits(one.Stdout);
        Assert.True(MaxDifference(expected, LastLogits(two.Stdout)) <= 1e-4f);

        var quantized = KilnCli.Run([.. args, "--quantize", "int8"]);
        Assert.True(quantized.ExitCode == 0, quantized.Stderr);
        var int8 = LastLogits(quantized.Stdout);
        var difference = MaxDifference(expected, int8);
        Assert.True(difference > 0 && difference <= 0.1f * expected.Max(Math.Abs), $"int8 logits differ by {difference}");
    }

    public static TheoryData<string> Names => ["phi3", "gemma"];

    [Theory]
    [MemberData(nameof(Names))]
    public void A_warm_run_restores_the_family_from_the_snapshot_cache_with_the_same_logits(string family)
    {
        using var dir = new TempDir();
        using var cache = new TempDir();
        var model = dir.File("model");
        var written = KilnCli.Run("testmodel", "--family", family, "--layers", "1", "--hidden", "32", "--heads", "2",
            "--intermediate", "48", "--vocab", "60", "--max-positions", "32", "--out", model);
        Assert.True(written.ExitCode == 0, written.Stderr);
        var environment = new Dictionary<string, string> { ["KILN_CACHE_DIR"] = cache.Path };
        string[] args = ["logits", "--model", model, "--ids", "1 2 3", "--json"];
        var cold = KilnCli.RunWith(cache.Path, environment, args);
        Assert.True(cold.ExitCode == 0, cold.Stderr);
        var warm = KilnCli.RunWith(cache.Path, environment, args);
        Assert.True(warm.ExitCode == 0, warm.Stderr);
        Assert.Contains("cache hit at point", warm.Stderr);
        Assert.Equal(LastLogits(cold.Stdout), LastLogits(warm.Stdout));
    }

    private static float MaxDifference(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        return expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
    }

    private static float[] LastLogits(string json) => JsonNode.Parse(json)!["last_logits"]!.AsArray().Select(n => (float)n!.GetValue<double>()).ToArray();
}
