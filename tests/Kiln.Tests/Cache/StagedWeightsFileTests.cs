using Kiln.Cache;
using Kiln.Graph;

namespace Kiln.Tests.Cache;

/// <summary>
/// A staged weights file hashed as its products are written: whatever order the products come in, however many of
/// them are reported written, and whatever became of the work it waited for, <see cref="StagedWeightsFile.Complete"/>
/// gives the hash of the file's bytes as they are on disk; disposed while hashing, it stops without reading an unmapped page.
/// </summary>
public sealed unsafe class StagedWeightsFileTests : IDisposable
{
    private readonly CacheDir _cache = new();

    // Three products over two 64 MiB chunks: the middle one spans the boundary, so each chunk waits for two products.
    private static readonly WeightsFile.Product[] Products =
    [
        new("a.weight", DType.F32, [10, 1 << 20], 10L << 22),
        new("b.weight", DType.F32, [10, 1 << 20], 10L << 22),
        new("c.weight", DType.F32, [3, 1000], 12_000),
    ];

    public static TheoryData<string, int> Orders() => new()
    {
        { "a.weight,b.weight,c.weight", 3 },
        { "c.weight,b.weight,a.weight", 3 },
        { "b.weight,c.weight,a.weight", 1 },
        { "a.weight,c.weight", 2 },
    };

    [Theory]
    [MemberData(nameof(Orders))]
    public void The_hash_as_written_is_the_hash_of_the_finished_file(string order, int reported)
    {
        var path = _cache.Outside("weights.safetensors");
        WeightsFileRecord record;
        using (var file = StagedWeightsFile.Create(path, "rank_0/weights.safetensors", Products))
        {
            file.HashAsWritten(after: Task.CompletedTask);
            var names = order.Split(',');
            for (var i = 0; i < names.Length; i++)
            {
                Fill(file, names[i]);
                // Only the first `reported` are said to be written: the rest are hashed when the file is completed.
                if (i < reported) file.Written(names[i]);
            }
            foreach (var product in Products.Where(p => !names.Contains(p.Name))) Fill(file, product.Name);
            record = file.Complete();
        }

        Assert.Equal(new FileInfo(path).Length, record.Bytes);
        Assert.Equal(ContentHashes.Hash(path), record.Xxh3);
    }

    [Fact]
    public void Hashing_waits_for_the_work_before_it_and_ignores_its_failure()
    {
        var path = _cache.Outside("weights.safetensors");
        var before = new TaskCompletionSource();
        using var file = StagedWeightsFile.Create(path, "rank_0/weights.safetensors", Products);
        file.HashAsWritten(after: before.Task);
        foreach (var product in Products)
        {
            Fill(file, product.Name);
            file.Written(product.Name);
        }
        before.SetException(new IOException("the checkpoint could not be hashed"));

        Assert.Equal(ContentHashes.Hash(path), file.Complete().Xxh3);
    }

    [Fact]
    public void A_file_disposed_while_hashing_stops_and_a_changed_byte_changes_the_hash()
    {
        var path = _cache.Outside("weights.safetensors");
        string first;
        using (var file = StagedWeightsFile.Create(path, "rank_0/weights.safetensors", Products))
        {
            file.HashAsWritten(after: null);
            foreach (var product in Products)
            {
                Fill(file, product.Name);
                file.Written(product.Name);
            }
            first = file.Complete().Xxh3;
        }
        File.Delete(path);
        using (var file = StagedWeightsFile.Create(path, "rank_0/weights.safetensors", Products))
        {
            file.HashAsWritten(after: null);
            foreach (var product in Products)
            {
                Fill(file, product.Name);
                if (product.Name == "b.weight") ((byte*)file.Places["b.weight"])[5] ^= 1;
                file.Written(product.Name);
            }
            Assert.NotEqual(first, file.Complete().Xxh3);
        }
        File.Delete(path);
        var abandoned = StagedWeightsFile.Create(path, "rank_0/weights.safetensors", Products);
        abandoned.HashAsWritten(after: null);
        Fill(abandoned, "a.weight");
        abandoned.Written("a.weight");
        abandoned.Dispose();
        Assert.Throws<ObjectDisposedException>(() => abandoned.Complete());
    }

    // Bytes that differ from product to product and from place to place.
    private static void Fill(StagedWeightsFile file, string name)
    {
        var product = Products.Single(p => p.Name == name);
        var bytes = new Span<byte>((void*)file.Places[name], (int)product.ByteLength);
        new Random(name.GetHashCode(StringComparison.Ordinal)).NextBytes(bytes);
    }

    public void Dispose() => _cache.Dispose();
}
