using System.Text.Json.Nodes;

namespace Kiln.Tests.EndToEnd;

public sealed class CompileCommandTests
{
    [Fact]
    public void Json_report_lists_transforms_and_final_op_counts()
    {
        var result = KilnCli.Run("compile", "--model", TestPaths.Oracle("llama_gqa"), "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);

        var report = JsonNode.Parse(result.Stdout)!;
        var transforms = report["transforms"]!.AsArray();
        Assert.Contains(transforms, t => t!["name"]!.GetValue<string>() == "load_weights" && t["stage"]!.GetValue<string>() == "weight_load");
        foreach (var t in transforms)
        {
            Assert.True(t!["ms"]!.GetValue<double>() >= 0);
            Assert.True(t["matches"]!.GetValue<int>() >= 0);
            Assert.True(t["nodes_after"]!.GetValue<int>() > 0);
        }
        var ops = report["ops"]!.AsObject();
        Assert.Equal(report["nodes"]!.GetValue<int>(), ops.Sum(o => o.Value!.GetValue<int>()));
        Assert.Equal(transforms[^1]!["nodes_after"]!.GetValue<int>(), report["nodes"]!.GetValue<int>());
    }

    [Fact]
    public void Dump_dir_holds_the_graph_after_export_and_every_transform()
    {
        using var dir = new TempDir();
        var result = KilnCli.Run("compile", "--model", TestPaths.Oracle("qwen2"), "--dump-dir", dir.Path, "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);

        var transforms = JsonNode.Parse(result.Stdout)!["transforms"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()).ToList();
        var expected = transforms.Select((name, i) => $"{i + 1:D2}_{name}").Prepend("00_export").ToList();
        var files = Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(expected.SelectMany(stem => new[] { stem + ".json", stem + ".txt" }).Order(), files);
        Assert.StartsWith("# architecture = Qwen2ForCausalLM", File.ReadAllText(Path.Combine(dir.Path, "00_export.txt")));
    }

    // Found by an independent fuzzing round: a link in the dump folder (from an earlier dump or planted)
    // was written through, replacing the file it pointed to.
    [Fact]
    public void Dump_dir_replaces_a_link_instead_of_writing_through_it()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        var target = elsewhere.File("precious.txt");
        File.WriteAllText(target, "keep me");
        var link = dir.File("00_export.json");
        File.CreateSymbolicLink(link, target);

        var result = KilnCli.Run("compile", "--no-cache", "--dump-dir", dir.Path, "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("keep me", File.ReadAllText(target));
        Assert.Null(new FileInfo(link).LinkTarget);
        Assert.StartsWith("{", File.ReadAllText(link));
    }

    [Fact]
    public void Dump_dir_empty_is_a_user_error()
    {
        var result = KilnCli.Run("compile", "--no-cache", "--dump-dir", "");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("kiln: error: --dump-dir: the path is empty", result.Stderr.Trim());
    }

    [Fact]
    public void Verify_passes_on_the_default_pipeline()
    {
        var result = KilnCli.Run("compile", "--model", TestPaths.Oracle("mistral"), "--verify", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        foreach (var t in JsonNode.Parse(result.Stdout)!["transforms"]!.AsArray())
            Assert.InRange(t!["verify_max_abs_difference"]!.GetValue<double>(), 0, 1e-3);
    }

    [Fact]
    public void Bad_pipeline_override_is_a_user_error()
    {
        var result = KilnCli.Run("compile", "--set", "load_weights.speed=2");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("load_weights.speed: unknown setting", result.Stderr);
    }
}
