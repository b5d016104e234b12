using System.Text.Json.Nodes;

namespace Kiln.Tests.EndToEnd;

/// <summary>Bad input through the real `kiln` process: one line naming the file and field, exit code 2.</summary>
public sealed class UserErrorTests
{
    [Fact]
    public void Missing_model_folder()
    {
        var missing = Path.Combine(Path.GetTempPath(), "kiln-no-such-model");
        AssertUserError(KilnCli.Run("generate", "--model", missing, "--prompt-ids", "1 2"), missing);
    }

    [Fact]
    public void Missing_config_json()
    {
        using var dir = new TempDir();
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "config.json");
    }

    [Fact]
    public void Malformed_config_json()
    {
        using var dir = CopyOracle("llama_gqa");
        File.WriteAllText(dir.File("config.json"), "{ \"model_type\": \"llama\", ");
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "config.json");
    }

    [Fact]
    public void Unsupported_model_type()
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c["model_type"] = "gpt_neox");
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "config.json", "model_type", "gpt_neox");
    }

    [Fact]
    public void Unsupported_config_value()
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "config.json", "rope_scaling.rope_type", "yarn");
    }

    [Fact]
    public void Missing_tensor()
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c["num_hidden_layers"] = 3);
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "model.safetensors", "model.layers.2.");
    }

    [Fact]
    public void Missing_tensor_of_a_sharded_checkpoint_names_the_index()
    {
        using var dir = CopyOracle("llama_gqa_sharded");
        EditConfig(dir, c => c["num_hidden_layers"] = 3);
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "model.safetensors.index.json", "model.layers.2.");
    }

    [Fact]
    public void Tensor_shape_that_disagrees_with_config_json()
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c["intermediate_size"] = 96);
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "model.safetensors", "mlp.gate_proj.weight", "config.json");
    }

    [Fact]
    public void Truncated_safetensors()
    {
        using var dir = CopyOracle("llama_gqa");
        var weights = dir.File("model.safetensors");
        using (var file = File.Open(weights, FileMode.Open)) file.SetLength(file.Length / 2);
        AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "model.safetensors");
    }

    [Fact]
    public void Prompt_longer_than_the_context()
    {
        var ids = string.Join(" ", Enumerable.Repeat("5", 300));
        AssertUserError(KilnCli.Run("generate", "--model", TestPaths.Oracle("llama_gqa"), "--prompt-ids", ids), "prompt", "256");
        var text = string.Concat(Enumerable.Repeat("Once upon a time there was a cat. ", 100));
        AssertUserError(KilnCli.Run("generate", "--prompt", text), "prompt", "max_position_embeddings");
    }

    [Fact]
    public void Token_id_outside_the_vocabulary()
    {
        AssertUserError(KilnCli.Run("logits", "--ids", "1 600"), "--ids", "600");
    }

    [Fact]
    public void Invalid_sampling_option()
    {
        AssertUserError(KilnCli.Run("generate", "--prompt", "Hi", "--temperature", "-1"), "--temperature");
        AssertUserError(KilnCli.Run("generate", "--prompt", "Hi", "--top-p", "1.5"), "--top-p");
    }

    [Fact]
    public void Prompt_and_prompt_ids_together()
    {
        AssertUserError(KilnCli.Run("generate", "--prompt", "Hi", "--prompt-ids", "1"), "--prompt");
    }

    [Fact]
    public void Text_prompt_without_a_tokenizer()
    {
        AssertUserError(KilnCli.Run("generate", "--model", TestPaths.Oracle("llama_gqa"), "--prompt", "Hi"), "tokenizer.json");
    }

    [Fact]
    public void Verbose_adds_the_stack_trace()
    {
        using var dir = new TempDir();
        var result = KilnCli.Run("logits", "--model", dir.Path, "--ids", "1", "--verbose");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("   at ", result.Stderr);
    }

    // One error line and no stack trace; the cache's one-line report ("kiln: cache ...") may precede it.
    private static void AssertUserError(CliResult result, params string[] mentions)
    {
        Assert.Equal(2, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("kiln: cache ")).ToArray();
        Assert.True(lines.Length == 1, $"expected one line, got:\n{result.Stderr}");
        Assert.StartsWith("kiln: error: ", lines[0]);
        foreach (var mention in mentions) Assert.Contains(mention, lines[0]);
    }

    private static TempDir CopyOracle(string name)
    {
        var dir = new TempDir();
        foreach (var file in Directory.GetFiles(TestPaths.Oracle(name)))
            File.Copy(file, Path.Combine(dir.Path, Path.GetFileName(file)));
        return dir;
    }

    private static void EditConfig(TempDir dir, Action<JsonObject> edit)
    {
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
    }
}
