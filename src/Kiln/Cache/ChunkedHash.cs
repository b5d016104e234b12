using System.IO.Hashing;

namespace Kiln.Cache;

/// <summary>
/// The content hash of checkpoint files and of the weights tier's own files: XXH3-128 of the bytes for content
/// of up to one chunk (64 MiB), and for longer content XXH3-128, seeded with its length, of the chunks' own
/// XXH3-128 digests in order, so that the chunks of a mapped file are hashed on every core at once (one thread
/// hashes about 10 GB/s here): a warm start whose memo does not know the checkpoint or its weights file waits for
/// their hashes (docs/cache.md). A stream gives the same hash, read in order.
/// </summary>
public static unsafe class ChunkedHash
{
    public const int ChunkBytes = 64 << 20;

    /// <summary>Names this definition in the content-hash memo, whose records of another definition are not used.</summary>
    public const string Scheme = "xxh3-128, 64 MiB chunks";

    private const int DigestBytes = 16;
    private const int ReadBuffer = 1 << 20;

    /// <summary>
    /// The hash of <paramref name="length"/> bytes at <paramref name="data"/> (32 lowercase hex digits).
    /// With <paramref name="releaseChunks"/>, a mapped file's pages are unmapped from the process once their chunk
    /// is hashed (<see cref="Weights.PageAdvice.ReleaseFileBacked"/>), so hashing a file adds nothing to the
    /// resident memory.
    /// </summary>
    public static string Of(byte* data, long length, bool releaseChunks = false)
    {
        var chunks = (int)Math.Max(1, (length + ChunkBytes - 1) / ChunkBytes);
        var digests = new byte[chunks * DigestBytes];
        var start = (nint)data;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var at = (long)i * ChunkBytes;
            var count = (int)Math.Min(ChunkBytes, length - at);
            XxHash128.Hash(new ReadOnlySpan<byte>((byte*)(start + (nint)at), count), digests.AsSpan(i * DigestBytes, DigestBytes));
            if (releaseChunks) Weights.PageAdvice.ReleaseFileBacked(start + (nint)at, count);
        });
        return Combine(digests, length);
    }

    /// <summary>The hash of the rest of <paramref name="stream"/>, read in order.</summary>
    public static string Of(Stream stream)
    {
        var chunk = new XxHash128();
        var digests = new List<byte>();
        long length = 0, inChunk = 0;
        // No larger than the content: each page of a fresh buffer is a page fault, a large share of hashing a small file.
        var buffer = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(stream.CanSeek ? stream.Length - stream.Position : ReadBuffer, 1, ReadBuffer));
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var rest = buffer.AsSpan(0, read);
            while (rest.Length > 0)
            {
                var take = (int)Math.Min(rest.Length, ChunkBytes - inChunk);
                chunk.Append(rest[..take]);
                (inChunk, length) = (inChunk + take, length + take);
                rest = rest[take..];
                if (inChunk < ChunkBytes) continue;
                digests.AddRange(chunk.GetCurrentHash());
                chunk.Reset();
                inChunk = 0;
            }
        }
        if (inChunk > 0 || length == 0) digests.AddRange(chunk.GetCurrentHash());
        return Combine([.. digests], length);
    }

    // One chunk: its digest is the hash. Several: their digests hashed, seeded with the length, so that no content
    // of one chunk that happens to equal a list of digests shares its hash.
    private static string Combine(byte[] digests, long length) => Convert.ToHexStringLower(
        length <= ChunkBytes ? digests : XxHash128.Hash(digests, length));
}
