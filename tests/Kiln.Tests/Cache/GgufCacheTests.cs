using Kiln.Checkpoints;
using Kiln.Tests.Checkpoints.Gguf;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>
/// A GGUF checkpoint through the snapshot cache: its keys cover the file, the pre-weight-load snapshot is
/// restored for it (its block tensors and llama.cpp row order are bound after), and the weights tier
/// saves and maps its products (the deinterleaved q/k/v, the concatenated gate/up).
/// </summary>
public sealed class GgufCacheTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void The_first_snapshot_of_a_q8_0_gguf_is_restored_for_another_post_load_setting()
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File("q8_0.gguf"), GgufModels.LinearsIn(Kiln.Checkpoints.Gguf.GgmlType.Q8_0));
        using var cache = new CacheDir();
        var cold = CachedCompile.Run(path, cache.Settings());
        Assert.Equal("miss", cold.Cache!.Status);
        var other = CachedCompile.Run(path, cache.Settings(), PipelineConfig.Load(null, ["quantize_weights.output_layer=false"]));
        Assert.Equal("hit", other.Cache!.Status);
        Assert.StartsWith(DefaultPoints.FirstShort, other.Cache.Point);
        Assert.Equal("source(lm_head.weight) |> dequantize(int8)", other.Graph.Parameters.Single(p => p.Name == "lm_head.weight").Recipe.ToString());
        var warm = CachedCompile.Run(path, cache.Settings());
        Assert.Equal("hit", warm.Cache!.Status);
        Assert.StartsWith(DefaultPoints.FinalShort, warm.Cache.Point);
    }

    [Fact]
    public void A_gguf_and_its_folder_never_share_an_entry_and_a_changed_file_misses()
    {
        using var cache = new CacheDir();
        var folder = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        var copy = dir.File("stories260K.gguf");
        File.Copy(GgufModels.Stories260K, copy);
        var gguf = CachedCompile.Run(copy, cache.Settings());
        Assert.Equal("miss", gguf.Cache!.Status);
        Assert.NotEqual(folder.Cache!.Key, gguf.Cache.Key);

        // The same size and headers, one weight changed: the content fingerprint tells them apart.
        var bytes = File.ReadAllBytes(copy);
        bytes[^1] ^= 1;
        File.WriteAllBytes(copy, bytes);
        var content = cache.Settings() with { Fingerprint = Kiln.Cache.FingerprintMode.Content };
        var before = CachedCompile.Run(GgufModels.Stories260K, content);
        var after = CachedCompile.Run(copy, content);
        Assert.NotEqual(before.Cache!.Key, after.Cache!.Key);
    }

    [Fact]
    public void A_warm_start_maps_the_gguf_products_and_gives_the_cold_logits()
    {
        var path = GgufModels.Convert(GgufModels.Stories260K, dir.File("q4_0.gguf"), GgufModels.LinearsIn(Kiln.Checkpoints.Gguf.GgmlType.Q4_0));
        using var cache = new CacheDir();
        string[] logits = ["logits", "--model", path, "--ids", "1 403 407 300 12", "--json", "--threads", "1"];
        var uncached = cache.Run([.. logits, "--no-cache"]);
        var cold = cache.Run(logits);
        var warm = cache.Run(logits);
        Assert.True(uncached.ExitCode == 0 && cold.ExitCode == 0 && warm.ExitCode == 0, uncached.Stderr + cold.Stderr + warm.Stderr);
        // The Q4_0 blocks of 5 × (q/k/v deinterleaved and joined, gate/up joined); o, the output layer and every other
        // weight are views of the file.
        Assert.Contains("kiln: weights miss (no weights in the entry); computed 10 product(s)", cold.Stderr);
        Assert.Contains("kiln: weights hit", warm.Stderr);
        Assert.Equal(uncached.Stdout, cold.Stdout);
        Assert.Equal(cold.Stdout, warm.Stdout);
    }
}
