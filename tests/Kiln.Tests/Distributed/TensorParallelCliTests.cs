using System.Text.Json.Nodes;

namespace Kiln.Tests.Distributed;

/// <summary>
/// `--tp` through the real command line: kiln starts mpirun on itself, and every rank is a separate
/// process joined by Open MPI. Needs Open MPI (CI installs it: apt-get install openmpi-bin libopenmpi-dev).
/// </summary>
public sealed class TensorParallelCliTests
{
    [Fact]
    public void Two_ranks_generate_the_tokens_of_one()
    {
        string[] args = ["generate", "--prompt-ids", "1 403 407", "--max-new-tokens", "16", "--json", "--no-cache"];
        var one = KilnCli.Run(args);
        var two = KilnCli.Run([.. args, "--tp", "2"]);
        Assert.True(two.ExitCode == 0, two.Stderr);
        Assert.Equal(NewIds(one.Stdout), NewIds(two.Stdout));
        Assert.Single(two.Stdout.Trim().Split('\n')); // only rank 0 prints
    }

    [Fact]
    public void Four_ranks_over_two_kv_heads_give_the_logits_of_one()
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        var written = KilnCli.Run("testmodel", "--layers", "2", "--hidden", "64", "--heads", "8", "--kv-heads", "2", "--intermediate", "96",
            "--vocab", "100", "--out", model);
        Assert.True(written.ExitCode == 0, written.Stderr);
        string[] args = ["logits", "--model", model, "--ids", "1 5 9 13 17", "--json", "--no-cache"];
        var one = KilnCli.Run(args);
        var four = KilnCli.Run([.. args, "--tp", "4"]);
        Assert.True(four.ExitCode == 0, four.Stderr);
        var (expected, actual) = (LastLogits(one.Stdout), LastLogits(four.Stdout));
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second)) <= 1e-4f);
    }

    [Fact]
    public void Compile_verify_checks_every_rank_after_sharding()
    {
        var result = KilnCli.Run("compile", "--model", TestPaths.Oracle("llama_gqa"), "--verify", "--json", "--no-cache", "--tp", "2");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var transforms = JsonNode.Parse(result.Stdout)!["transforms"]!.AsArray();
        var differences = transforms.Select(t => t!["verify_max_abs_difference"]?.GetValue<double>()).ToList();
        // Every transform was run on the ranks' graphs, those after shard_tensor_parallel summing over both ranks.
        Assert.All(differences, d => Assert.True(d is <= 1e-3, $"difference {d}"));
        var sharding = transforms.Select((t, i) => (Name: t!["name"]!.GetValue<string>(), Index: i)).Single(t => t.Name == "shard_tensor_parallel").Index;
        Assert.True(sharding < transforms.Count - 1);
        Assert.Contains("\"all_reduce\"", result.Stdout);
    }

    [Fact]
    public void Both_ranks_hit_the_cache_and_a_corrupt_rank_file_makes_both_rebuild()
    {
        using var cache = new TempDir();
        var environment = new Dictionary<string, string> { ["KILN_CACHE_DIR"] = cache.Path };
        string[] args = ["generate", "--prompt-ids", "1 403 407", "--max-new-tokens", "8", "--json", "--tp", "2"];
        var cold = KilnCli.RunWith(cache.Path, environment, args);
        Assert.True(cold.ExitCode == 0, cold.Stderr);
        var entry = Directory.GetDirectories(Path.Combine(cache.Path, "pipeline")).Single(d => Directory.Exists(Path.Combine(d, "rank_1")) &&
            Directory.GetDirectories(d, "weights-*").Length > 0);
        Assert.True(File.Exists(Path.Combine(entry, "rank_0", "graph.json")) && File.Exists(Path.Combine(entry, "rank_1", "graph.json")));

        var warm = KilnCli.RunWith(cache.Path, environment, args);
        Assert.Contains("cache hit at point", warm.Stderr);
        Assert.Equal(NewIds(cold.Stdout), NewIds(warm.Stdout));

        // One byte of rank 1's graph: rank 1's check fails, and the ranks agree that all of them rebuild.
        var graph = Path.Combine(entry, "rank_1", "graph.json");
        var bytes = File.ReadAllBytes(graph);
        bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(graph, bytes);
        var rebuilt = KilnCli.RunWith(cache.Path, environment, args);
        Assert.True(rebuilt.ExitCode == 0, rebuilt.Stderr);
        // Rank 0's own files are sound, yet it rebuilds from the shared point with rank 1 instead of hitting the final one.
        Assert.DoesNotContain($"cache hit at {Kiln.Tests.Cache.DefaultPoints.FinalShort} ", rebuilt.Stderr);
        Assert.Contains("later point not used", rebuilt.Stderr);
        Assert.Equal(NewIds(cold.Stdout), NewIds(rebuilt.Stdout));
    }

    [Fact]
    public void Bench_reports_every_rank_and_the_all_reduce_time()
    {
        var result = KilnCli.Run("bench", "--tp", "2", "--prompt-tokens", "4", "--new-tokens", "4", "--repeats", "1", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        Assert.Equal(2, json["tensor_parallel"]!.GetValue<int>());
        Assert.All(json["rank_peak_rss_bytes"]!.AsArray(), rss => Assert.True(rss!.GetValue<long>() > 10_000_000));
        Assert.Equal(2, json["rank_peak_rss_bytes"]!.AsArray().Count);
        Assert.True(json["all_reduce_ms_per_token"]!.GetValue<double>() > 0);
    }

    [Fact]
    public void A_degree_that_does_not_divide_the_heads_is_one_error_line_and_exit_code_2()
    {
        var result = KilnCli.Run("generate", "--prompt-ids", "1", "--max-new-tokens", "1", "--no-cache", "--tp", "3");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("kiln: error: tensor parallel degree 3 does not divide the model's 8 attention heads (config.json num_attention_heads)", result.Stderr.Trim());
    }

    [Fact]
    public async Task A_killed_rank_stops_the_job_with_an_error()
    {
        using var launcher = KilnCli.Start(Directory.GetCurrentDirectory(), new Dictionary<string, string>(),
            "generate", "--prompt-ids", "1 403 407", "--max-new-tokens", "500", "--no-cache", "--tp", "2");
        // Rank 0 streams token ids as it decodes: once one arrives, both ranks are in the decode loop.
        var first = new char[1];
        Assert.Equal(1, launcher.StandardOutput.Read(first, 0, 1));
        var rank1 = RankProcess(launcher.Id, 1);
        Assert.NotNull(rank1);
        rank1.Kill();
        var stderr = launcher.StandardError.ReadToEndAsync();
        _ = launcher.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await launcher.WaitForExitAsync(timeout.Token); // throws if the other rank kept waiting for the killed one
        Assert.NotEqual(0, launcher.ExitCode);
        Assert.Contains("kiln: error: --tp 2: a rank ended abnormally", await stderr);
    }

    // The rank process (its environment names its MPI rank) among the descendants of process `root`.
    private static System.Diagnostics.Process? RankProcess(int root, int rank)
    {
        var marker = $"OMPI_COMM_WORLD_RANK={rank}";
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || !DescendsFrom(pid, root)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains(marker)) return System.Diagnostics.Process.GetProcessById(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }

    private static bool DescendsFrom(int pid, int root)
    {
        for (var depth = 0; depth < 8 && pid > 1; depth++)
        {
            if (pid == root) return true;
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                pid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException) { return false; }
        }
        return false;
    }

    private static int[] NewIds(string json) => JsonNode.Parse(json)!["new_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    private static float[] LastLogits(string json) => JsonNode.Parse(json)!["last_logits"]!.AsArray().Select(n => (float)n!.GetValue<double>()).ToArray();
}
