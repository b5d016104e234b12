using System.Text.Json;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Transforms;

namespace Kiln.Tests.Cache;

/// <summary>
/// Quantized pipelines and the snapshot cache: quantize_weights' scheme is part of the key, and the
/// packed weights are weight products, saved in the weights tier on a miss and mapped on a hit.
/// </summary>
public sealed class QuantizedCacheTests
{
    [Fact]
    public void Quantized_and_unquantized_pipelines_never_share_an_entry()
    {
        using var cache = new CacheDir();
        var keys = new Dictionary<string, string>();
        foreach (var scheme in new[] { "none", "int8", "int4" })
        {
            var cold = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), PipelineConfig.Load(null, [$"quantize_weights.scheme={scheme}"]));
            // The pre-weight-load point is shared (quantize_weights comes after it); the final one never is.
            Assert.Equal(scheme == "none" ? "miss" : "hit", cold.Cache!.Status);
            var warm = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings(), PipelineConfig.Load(null, [$"quantize_weights.scheme={scheme}"]));
            Assert.Equal("hit", warm.Cache!.Status);
            Assert.StartsWith(DefaultPoints.FinalShort + " ", warm.Cache.Point);
            Assert.Equal(scheme == "none" ? 0 : 21, warm.Graph.Nodes.Count(n => n.Op == "quantized_linear"));
            keys[scheme] = warm.Cache.Key!;
        }
        Assert.Equal(3, keys.Values.Distinct().Count());
        Assert.Equal(3, cache.Entries().Count(e => SnapshotStore.ReadManifest(e).Point.Index == DefaultPoints.FinalIndex));
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("int4")]
    public void A_warm_start_maps_the_packed_weights_and_gives_the_cold_logits(string scheme)
    {
        using var cache = new CacheDir();
        string[] logits = ["logits", "--ids", "1 403 407 300 12", "--json", "--threads", "1", "--quantize", scheme];
        var uncached = cache.Run([.. logits, "--no-cache"]);
        var cold = cache.Run(logits);
        var warm = cache.Run(logits);
        Assert.True(cold.ExitCode == 0 && warm.ExitCode == 0, cold.Stderr + warm.Stderr);
        // 5 × (qkv, o, gate_up, down) and the output layer's packed copy of the embedding.
        Assert.Contains("kiln: weights miss (no weights in the entry); computed 21 product(s)", cold.Stderr);
        Assert.Contains("kiln: weights hit", warm.Stderr);
        Assert.Equal(uncached.Stdout, cold.Stdout);
        Assert.Equal(cold.Stdout, warm.Stdout);

        var entry = cache.Entries().Single(e => SnapshotStore.ReadManifest(e).Point.Index == DefaultPoints.FinalIndex);
        var folder = Assert.Single(Directory.EnumerateDirectories(entry, WeightsTier.FolderPrefix + "*"));
        using var saved = SafetensorsFile.Open(Path.Combine(folder, "rank_0", WeightsTier.DataFile));
        var down = saved.Tensors["model.layers.0.mlp.down_proj.weight"];
        Assert.Equal(DType.U8, down.DType);
        Assert.Equal([64L, 6 * Kiln.Weights.QuantSchemes.BlockBytes(scheme == "int8" ? Kiln.Weights.QuantScheme.Int8 : Kiln.Weights.QuantScheme.Int4)], down.Shape);
        Assert.Contains($"model.embed_tokens.weight.{scheme}", saved.Tensors.Keys);
    }

    [Fact]
    public void Entries_written_with_an_older_recipe_schema_are_a_clean_miss()
    {
        using var cache = new CacheDir();
        CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());
        // What an older Kiln left (before the deinterleave_rows and dequantize steps): the previous recipe schema in the
        // manifest and in the key's schema component.
        var (current, older) = (Kiln.Weights.LoadRecipe.SchemaVersion, Kiln.Weights.LoadRecipe.SchemaVersion - 1);
        var store = new SnapshotStore(cache.Settings());
        foreach (var entry in store.List())
        {
            var manifest = entry.Manifest!;
            Assert.Contains(manifest.Components, c => c.Name == "schema" && c.Value.Contains($"recipe={current}", StringComparison.Ordinal));
            var components = manifest.Components.Select(c => c.Name == "schema" ? c with { Value = c.Value.Replace($"recipe={current}", $"recipe={older}", StringComparison.Ordinal) } : c).ToList();
            var oldKey = SnapshotKeys.Digest($"recipe schema {older} " + entry.Key);
            Directory.Move(store.EntryDirectory(entry.Key), store.EntryDirectory(oldKey));
            File.WriteAllText(Path.Combine(store.EntryDirectory(oldKey), SnapshotStore.ManifestFile), JsonSerializer.Serialize(
                manifest with { RecipeSchemaVersion = older, Key = oldKey, Components = components }, CacheJsonContext.Default.SnapshotManifest));
        }

        var again = CachedCompile.Run(TestPaths.DefaultModel, cache.Settings());

        Assert.Equal("miss", again.Cache!.Status);
        Assert.Equal("no entry", again.Cache.Reason);
        Assert.False(Directory.Exists(cache.Quarantine) && Directory.EnumerateFileSystemEntries(cache.Quarantine).Any());
    }
}
