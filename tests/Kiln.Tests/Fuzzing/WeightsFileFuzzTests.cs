using System.Buffers.Binary;
using System.Text.Json;
using CsCheck;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Compile;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Mutated weights files of the cache's weights tier (header bytes flipped, the file cut or extended),
/// with weights.json rewritten to the mutated file's size and XXH3-128 so that the checks after the
/// checksum run too: a restore either maps products identical to the computed ones or misses and
/// computes them; it never throws and never hands the runtime other bytes.
/// </summary>
public sealed class WeightsFileFuzzTests : IDisposable
{
    private static readonly int Cases = FuzzOutcome.Scaled(300);

    private readonly Kiln.Tests.Cache.CacheDir _cache = new();
    private readonly Checkpoint _checkpoint = Checkpoint.Open(TestPaths.DefaultModel);
    private readonly CompileResult _compiled;
    private readonly string _folder;
    private readonly byte[] _file;
    private readonly WeightsManifest _manifest;
    private readonly Dictionary<string, byte[]> _expected;

    public WeightsFileFuzzTests()
    {
        _compiled = Kiln.Tests.Cache.CachedCompile.Run(TestPaths.DefaultModel, _cache.Settings());
        var (report, bytes) = Load(CacheMode.ReadWrite);
        Assert.True(report.Saved, report.Summary);
        _expected = bytes;
        _folder = Directory.GetDirectories(_cache.Entries().Single(e => Directory.GetDirectories(e, WeightsTier.FolderPrefix + "*").Length == 1),
            WeightsTier.FolderPrefix + "*").Single();
        _file = File.ReadAllBytes(DataPath);
        _manifest = WeightsTier.ReadManifest(_folder);
    }

    private string DataPath => Path.Combine(_folder, "rank_0", WeightsTier.DataFile);

    private (WeightsReport Report, Dictionary<string, byte[]> Bytes) Load(CacheMode mode)
    {
        var tier = new WeightsTier(_cache.Settings(mode), _compiled.Cache!.Key!, Kiln.Distributed.SingleProcess.Instance);
        using var weights = tier.Load(_checkpoint, _compiled.Graph);
        return (tier.Report!, weights.Parameters.ToDictionary(p => p.Name, p => p.Bytes.ToArray()));
    }

    [Fact]
    public void MutatedWeightsFilesMapTheSameProductsOrMiss()
    {
        var headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(_file);
        var (hits, misses) = (0, 0);
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var bytes = random.Next(4) switch
            {
                0 => _file[..random.Next(_file.Length)],
                1 => [.. _file, .. new byte[random.Next(1, 5000)]],
                _ => Flip(_file, random, headerEnd),
            };
            File.WriteAllBytes(DataPath, bytes);
            var file = _manifest.Files[0] with { Bytes = bytes.Length, Xxh3 = ContentHashes.Hash(new MemoryStream(bytes)) };
            File.WriteAllBytes(Path.Combine(_folder, WeightsTier.ManifestFile),
                JsonSerializer.SerializeToUtf8Bytes(_manifest with { Files = [file] }, CacheJsonContext.Default.WeightsManifest));
            // Read-only: nothing is quarantined or saved, so every case sees the folder it wrote.
            var (report, loaded) = Load(CacheMode.ReadOnly);
            Assert.True(report.Status is "hit" or "miss", $"seed {seed}: {report.Summary}");
            if (report.Status == "hit") hits++;
            else misses++;
            Assert.Equal(_expected.Keys.Order(), loaded.Keys.Order());
            foreach (var (name, expected) in _expected) Assert.True(expected.AsSpan().SequenceEqual(loaded[name]), $"seed {seed}: {name} differs ({report.Summary})");
        }, iter: Cases, threads: 1);
        Assert.True(misses > 0, "no mutation was refused");
        Assert.True(hits + misses == Cases);
    }

    // One to three bytes of the length field or header JSON changed.
    private static byte[] Flip(byte[] file, Random random, int headerEnd)
    {
        var bytes = (byte[])file.Clone();
        for (var i = random.Next(1, 4); i > 0; i--) bytes[random.Next(Math.Min(headerEnd, bytes.Length))] = (byte)random.Next(256);
        return bytes;
    }

    public void Dispose()
    {
        _checkpoint.Dispose();
        _cache.Dispose();
    }
}
