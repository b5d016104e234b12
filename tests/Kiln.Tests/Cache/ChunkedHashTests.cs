using System.IO.Hashing;
using System.Text.Json.Nodes;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// The content hash: plain XXH3-128 up to one chunk, the seeded hash of the chunks' digests beyond, the same from a
/// mapping (chunks on every core) as from a stream (read in order), and sensitive to a byte anywhere.
/// </summary>
public sealed unsafe class ChunkedHashTests : IDisposable
{
    private readonly CacheDir _cache = new();

    public static TheoryData<long> Lengths() =>
        [0, 1, 4095, ChunkedHash.ChunkBytes - 1, ChunkedHash.ChunkBytes, ChunkedHash.ChunkBytes + 1, 2L * ChunkedHash.ChunkBytes + 4099];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void A_mapping_and_a_stream_give_the_same_hash_and_one_chunk_is_plain_xxh3(long length)
    {
        var bytes = Content(length);
        string mapped;
        fixed (byte* data = bytes) mapped = ChunkedHash.Of(data, bytes.Length);

        Assert.Equal(mapped, ChunkedHash.Of(new MemoryStream(bytes)));
        Assert.Equal(mapped, ChunkedHash.Of(new TrickleStream(bytes)));
        var plain = Convert.ToHexStringLower(XxHash128.Hash(bytes));
        if (length <= ChunkedHash.ChunkBytes) Assert.Equal(plain, mapped);
        else Assert.NotEqual(plain, mapped);
    }

    [Fact]
    public void A_byte_changed_in_any_chunk_changes_the_hash()
    {
        var bytes = Content(2L * ChunkedHash.ChunkBytes + 10);
        var hashes = new HashSet<string>();
        foreach (var at in new long[] { -1, 0, ChunkedHash.ChunkBytes - 1, ChunkedHash.ChunkBytes, bytes.Length - 1 })
        {
            if (at >= 0) bytes[at] ^= 1;
            fixed (byte* data = bytes) Assert.True(hashes.Add(ChunkedHash.Of(data, bytes.Length)), $"byte {at} flipped: the hash did not change");
            if (at >= 0) bytes[at] ^= 1;
        }
    }

    [Fact]
    public void A_file_is_hashed_mapped_and_a_memo_of_another_definition_is_not_used()
    {
        Directory.CreateDirectory(_cache.Root);
        var path = _cache.Outside("big.bin");
        var bytes = Content(ChunkedHash.ChunkBytes + 123);
        File.WriteAllBytes(path, bytes);
        var expected = ChunkedHash.Of(new MemoryStream(bytes));
        Assert.Equal(expected, ContentHashes.Hash(path));

        // A memo whose record for this very file says 00..0: taken under this definition's scheme, and not when
        // written by a Kiln that hashed files whole (no scheme) or under another scheme.
        var identity = FileIdentity.Of(path);
        var memoPath = Path.Combine(_cache.Root, ContentHashes.MemoFile);
        string Memo(string? scheme)
        {
            var memo = new JsonObject
            {
                ["files"] = new JsonArray(new JsonObject
                {
                    ["device"] = identity.Device, ["inode"] = identity.Inode, ["size"] = identity.Size,
                    ["mtime_ns"] = identity.MtimeNs, ["ctime_ns"] = identity.CtimeNs, ["xxh3"] = new string('0', 32),
                }),
            };
            if (scheme is not null) memo["scheme"] = scheme;
            return memo.ToJsonString();
        }
        File.WriteAllText(memoPath, Memo(ChunkedHash.Scheme));
        Assert.Equal(new string('0', 32), ContentHashes.Known(_cache.Root, identity));
        File.WriteAllText(memoPath, Memo("xxh3-128, whole files"));
        Assert.Null(ContentHashes.Known(_cache.Root, identity));
        File.WriteAllText(memoPath, Memo(null));
        Assert.Null(ContentHashes.Known(_cache.Root, identity));

        Assert.Equal(expected, ContentHashes.Of(_cache.Root, [path], writable: true)[path]);
        Assert.Equal(expected, ContentHashes.Known(_cache.Root, identity));
    }

    private static byte[] Content(long length)
    {
        var bytes = GC.AllocateUninitializedArray<byte>((int)length);
        new Random((int)length).NextBytes(bytes);
        return bytes;
    }

    // A stream that hands out at most 777 bytes a read, so chunk boundaries fall inside reads.
    private sealed class TrickleStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, 777)]);
    }

    public void Dispose() => _cache.Dispose();
}
