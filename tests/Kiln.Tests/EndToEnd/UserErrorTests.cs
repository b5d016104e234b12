using System.Text.Json.Nodes;
using Kiln.Tests.Checkpoints;

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

    // The findings of an independent fuzzing round: each must be exit 2 with one line naming file and field.

    [Fact]
    public void Header_length_one_short_is_refused_not_read_one_byte_off()
    {
        using var dir = CopyOracle("llama_gqa");
        var weights = dir.File("model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        var length = (int)BitConverter.ToUInt64(bytes);
        // The header still parses without its last byte when it ends in padding spaces.
        var header = System.Text.Encoding.UTF8.GetString(bytes, 8, length).TrimEnd() + "  ";
        var json = System.Text.Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(weights, [.. BitConverter.GetBytes((ulong)json.Length - 1), .. json, .. bytes[(8 + length)..]]);
        AssertUserError(Generate(dir), "model.safetensors", "data section", "after the last tensor");
    }

    [Fact]
    public void Trailing_bytes_after_the_last_tensor()
    {
        using var dir = CopyOracle("llama_gqa");
        File.AppendAllText(dir.File("model.safetensors"), "xyz");
        AssertUserError(Generate(dir), "model.safetensors", "data section", "3 bytes after the last tensor");
    }

    [Fact]
    public void Invalid_utf8_inside_a_string_of_config_json()
    {
        using var dir = CopyOracle("llama_gqa");
        var text = File.ReadAllBytes(dir.File("config.json"));
        var at = System.Text.Encoding.UTF8.GetString(text).IndexOf("\"silu\"", StringComparison.Ordinal) + 2;
        File.WriteAllBytes(dir.File("config.json"), [.. text[..at], 0xFF, .. text[at..]]);
        AssertUserError(Generate(dir), "config.json", "line", "invalid UTF-8");
    }

    [Fact]
    public void Invalid_utf8_inside_the_safetensors_header()
    {
        using var dir = CopyOracle("llama_gqa");
        var weights = dir.File("model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        var at = System.Text.Encoding.UTF8.GetString(bytes, 8, 200).IndexOf("\"F32\"", StringComparison.Ordinal) + 8 + 1;
        bytes[at] = 0xC3; // the lead byte of a two-byte sequence, followed by "3"
        File.WriteAllBytes(weights, bytes);
        AssertUserError(Generate(dir), "model.safetensors", "header", "invalid UTF-8");
    }

    [Fact]
    public void Duplicate_key_in_config_json()
    {
        using var dir = CopyOracle("llama_gqa");
        var text = File.ReadAllText(dir.File("config.json"));
        File.WriteAllText(dir.File("config.json"), text.Insert(text.IndexOf('{') + 1, "\"hidden_size\": 32,"));
        AssertUserError(Generate(dir), "config.json", "hidden_size", "duplicate key");
    }

    [Fact]
    public void Architectures_given_as_a_string()
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c["architectures"] = "LlamaForCausalLM");
        AssertUserError(Generate(dir), "config.json", "architectures", "list of strings");
    }

    [Theory]
    [InlineData("num_hidden_layers", "4294967301", "32-bit")]
    [InlineData("hidden_size", "-4294967232", "32-bit")]
    [InlineData("rms_norm_eps", "1e400", "out of range")]
    [InlineData("rms_norm_eps", "-1e-5", "must be positive")]
    [InlineData("rms_norm_eps", "0", "must be positive")]
    [InlineData("max_position_embeddings", "100000000", "maximum")]
    [InlineData("rope_theta", "-10000", "must be positive")]
    [InlineData("tie_word_embeddings", "\"false\"", "true or false")]
    [InlineData("eos_token_id", "256", "outside the vocabulary")]
    [InlineData("num_key_value_heads", "3", "does not divide")]
    public void Config_values_out_of_range(string field, string value, string problem)
    {
        using var dir = CopyOracle("llama_gqa");
        EditConfig(dir, c => c[field] = JsonNode.Parse(value));
        AssertUserError(Generate(dir), "config.json", field, problem);
    }

    [Theory]
    [InlineData("\"original_max_position_embeddings\": 0", "original_max_position_embeddings", "must be positive")]
    [InlineData("\"original_max_position_embeddings\": -8192", "original_max_position_embeddings", "must be positive")]
    [InlineData("\"low_freq_factor\": 4.0", "high_freq_factor", "greater than low_freq_factor")]
    [InlineData("\"factor\": 0.5", "factor", "at least 1")]
    public void Llama3_rope_scaling_out_of_range(string change, string field, string problem)
    {
        using var dir = CopyOracle("llama_gqa");
        var scaling = JsonNode.Parse("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 128}""")!.AsObject();
        var (key, value) = (change.Split(':')[0].Trim('"'), JsonNode.Parse(change.Split(':')[1]));
        scaling[key] = value;
        EditConfig(dir, c => c["rope_scaling"] = scaling);
        AssertUserError(Generate(dir), "config.json", "rope_scaling." + field, problem);
    }

    [Fact]
    public void Eos_token_of_generation_config_outside_the_vocabulary()
    {
        using var dir = CopyOracle("llama_gqa");
        File.WriteAllText(dir.File("generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 999]}""");
        AssertUserError(Generate(dir), "generation_config.json", "eos_token_id", "999");
    }

    [Theory]
    [InlineData("config.json")]
    [InlineData("model.safetensors")]
    public void A_fifo_in_place_of_a_checkpoint_file_is_refused_without_waiting(string name)
    {
        using var dir = CopyOracle("llama_gqa");
        File.Delete(dir.File(name));
        MakeFifo(dir.File(name));
        // A reader that waited for a writer would never give this error (KilnCli ends a hung run after minutes).
        AssertUserError(Generate(dir), name, "not a regular file", "FIFO");
    }

    [Fact]
    public void Malformed_tokenizer_json_names_the_file_and_field()
    {
        using var dir = new TempDir();
        CraftedFiles.CopyFolder(TestPaths.DefaultModel, dir.Path);
        var tokenizer = JsonNode.Parse(File.ReadAllText(dir.File("tokenizer.json")))!.AsObject();
        tokenizer["model"]!["vocab"]!["<s>"] = "one";
        File.WriteAllText(dir.File("tokenizer.json"), tokenizer.ToJsonString());
        AssertUserError(KilnCli.Run("generate", "--model", dir.Path, "--prompt", "Hi", "--max-new-tokens", "2", "--no-cache"), "tokenizer.json", "model.vocab.<s>");
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
        AssertUserError(KilnCli.Run("generate", "--prompt", "Hi", "--temperature", "-1"), "temperature");
        AssertUserError(KilnCli.Run("generate", "--prompt", "Hi", "--top-p", "1.5"), "top_p");
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

    // Found by an independent fuzzing round: --threads 0 was ONNX Runtime's two-line argument error, and
    // --threads 100000 did not finish in a minute (the thread pools' start-up).
    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("100000")]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("2147483648")]
    public void Threads_out_of_range(string threads)
    {
        AssertUserError(KilnCli.Run("generate", "--prompt-ids", "1", "--max-new-tokens", "2", "--no-cache", "--threads", threads), "--threads", threads);
        AssertUserError(KilnCli.Run("logits", "--ids", "1", "--no-cache", "--threads", threads), "--threads");
    }

    // Found by an independent fuzzing round: System.CommandLine's errors for a value outside an option's
    // choices span lines (one per choice), and a command missing several options printed a line for each.
    [Theory]
    [InlineData("generate", "--prompt-ids", "1", "--cache-mode", "on")]
    [InlineData("graph", "--format", "yaml")]
    [InlineData("testmodel")]
    [InlineData("nosuchcommand")]
    public void A_usage_error_is_one_line(params string[] args)
    {
        AssertUserError(KilnCli.Run(args));
    }

    // Found by an independent fuzzing round: a newline between ids was an error whose message held the newline.
    [Fact]
    public void Ids_may_be_separated_by_any_whitespace()
    {
        var spaced = KilnCli.Run("logits", "--ids", "1 403 407", "--json", "--no-cache");
        var mixed = KilnCli.Run("logits", "--ids", "1\n403\r\n407", "--json", "--no-cache");
        Assert.Equal(0, mixed.ExitCode);
        Assert.Equal(spaced.Stdout, mixed.Stdout);
    }

    // Found by an independent fuzzing round: --pipeline naming a FIFO waited forever, /dev/zero ran out of
    // memory and an empty path was an internal error (exit 1).
    [Theory]
    [InlineData("fifo", "FIFO")]
    [InlineData("/dev/zero", "character device")]
    [InlineData("", "pipeline file: the path is empty")]
    public void A_pipeline_file_that_is_not_a_regular_file(string kind, string problem)
    {
        using var dir = new TempDir();
        var path = kind == "fifo" ? dir.File("pipeline.yaml") : kind;
        if (kind == "fifo") MakeFifo(path);
        AssertUserError(KilnCli.Run("compile", "--no-cache", "--pipeline", path), problem);
    }

    // Found by an independent fuzzing round: a quoted transform name holding a line break made a two-line error.
    [Fact]
    public void An_error_quoting_a_line_break_stays_one_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("pipeline.yaml"), "transforms:\n  - name: \"fuse_\\nattention\"\n");
        AssertUserError(KilnCli.Run("compile", "--no-cache", "--pipeline", dir.File("pipeline.yaml")), "unknown transform 'fuse_\\nattention'");
    }

    // Found by an independent fuzzing round: an empty --out was an internal error (exit 1).
    [Fact]
    public void Testmodel_with_an_empty_out()
    {
        AssertUserError(KilnCli.Run("testmodel", "--family", "llama", "--layers", "1", "--hidden", "16", "--heads", "2",
            "--intermediate", "8", "--vocab", "32", "--out", ""), "output folder: the path is empty");
    }

    // ONNX Runtime loads on another thread from the start of a model's load (LoadedModel.Load); a run that exited on an
    // error while it was still loading crashed in the library's exit handlers now and then (exit 139 in about 1 of 20).
    [Fact]
    public void An_error_early_in_a_load_exits_2_every_time()
    {
        using var dir = CopyOracle("llama_gqa");
        File.WriteAllText(dir.File("config.json"), "{ \"model_type\": \"llama\", ");
        for (var run = 0; run < 12; run++)
            AssertUserError(KilnCli.Run("logits", "--model", dir.Path, "--ids", "1"), "config.json");
    }

    // One error line and no stack trace; the cache's one-line reports ("kiln: cache ...", "kiln: weights ...") may precede it.
    private static void AssertUserError(CliResult result, params string[] mentions)
    {
        Assert.Equal(2, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("kiln: cache ") && !l.StartsWith("kiln: weights ")).ToArray();
        Assert.True(lines.Length == 1, $"expected one line, got:\n{result.Stderr}");
        Assert.StartsWith("kiln: error: ", lines[0]);
        foreach (var mention in mentions) Assert.Contains(mention, lines[0]);
    }

    private static CliResult Generate(TempDir dir) =>
        KilnCli.Run("generate", "--model", dir.Path, "--prompt-ids", "1", "--max-new-tokens", "2", "--no-cache");

    private static void MakeFifo(string path)
    {
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
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
