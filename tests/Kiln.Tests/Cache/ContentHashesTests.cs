using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// The content-hash memo keeps every record when several threads or tiers update it at once: a record lost to a race
/// would make the next start read the whole file again.
/// </summary>
public sealed class ContentHashesTests : IDisposable
{
    private readonly CacheDir _cache = new();

    [Fact]
    public void Threads_hashing_at_the_same_time_each_keep_their_record()
    {
        Directory.CreateDirectory(_cache.Root);
        var files = Enumerable.Range(0, 8).Select(i =>
        {
            var path = _cache.Outside($"file{i}");
            File.WriteAllBytes(path, Enumerable.Repeat((byte)i, 1000 + i).ToArray());
            return path;
        }).ToList();
        using var start = new Barrier(files.Count);
        var hashes = new string[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = files.Count }, i =>
        {
            start.SignalAndWait();
            hashes[i] = ContentHashes.Of(_cache.Root, [files[i]], writable: true)[files[i]];
        });

        for (var i = 0; i < files.Count; i++)
        {
            Assert.Equal(ContentHashes.Hash(files[i]), hashes[i]);
            Assert.Equal(hashes[i], ContentHashes.Known(_cache.Root, FileIdentity.Of(files[i])));
        }
    }

    [Fact]
    public void A_cold_start_records_the_checkpoint_the_tokenizer_and_the_saved_weights()
    {
        var model = _cache.Outside("model");
        Directory.CreateDirectory(model);
        foreach (var file in Directory.EnumerateFiles(TestPaths.DefaultModel)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));

        // The weights tier and the tokenizer tier hash their files on threads of their own, at the same time.
        var cold = _cache.Run("generate", "--model", model, "--prompt", "Once", "--max-new-tokens", "2");

        Assert.True(cold.ExitCode == 0, cold.Stderr);
        foreach (var file in new[] { "model.safetensors", "tokenizer.json" })
            Assert.NotNull(ContentHashes.Known(_cache.Root, FileIdentity.Of(Path.Combine(model, file))));
        var weights = Directory.EnumerateFiles(_cache.Pipeline, WeightsTier.DataFile, SearchOption.AllDirectories).Single();
        Assert.NotNull(ContentHashes.Known(_cache.Root, FileIdentity.Of(weights)));
    }

    public void Dispose() => _cache.Dispose();
}
