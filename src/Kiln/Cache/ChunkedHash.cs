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

    /// <summary>Threads for a hash that runs beside other work of a start: every core but the one that work needs.</summary>
    public static int BesideOtherWork => Math.Max(1, Environment.ProcessorCount - 1);

    public const int DigestBytes = 16;
    private const int ReadBuffer = 1 << 20;

    /// <summary>
    /// The hash of <paramref name="length"/> bytes at <paramref name="data"/> (32 lowercase hex digits).
    /// With <paramref name="releaseChunks"/>, a mapped file's pages are unmapped from the process once their chunk
    /// is hashed (<see cref="Weights.PageAdvice.ReleaseFileBacked"/>), so hashing a file adds nothing to the
    /// resident memory. <paramref name="threads"/> hash chunks at once (0: one per core); a hash that runs beside other
    /// work of the same start leaves that work its core.
    /// </summary>
    public static string Of(byte* data, long length, bool releaseChunks = false, int threads = 0)
    {
        var digests = new byte[Chunks(length) * DigestBytes];
        HashChunks(data, length, digests, _ => true, releaseChunks, threads);
        return Combine(digests, length);
    }

    /// <summary>How many chunks <paramref name="length"/> bytes make (at least one).</summary>
    public static int Chunks(long length) => (int)Math.Max(1, (length + ChunkBytes - 1) / ChunkBytes);

    /// <summary>
    /// The digest of each chunk <c>i</c> of the <paramref name="length"/> bytes at <paramref name="data"/> for which
    /// <paramref name="wanted"/>(i), written to <paramref name="digests"/> at <c>16 i</c>; <see cref="Combine"/> makes
    /// the hash of them all. Chunks are independent, so they may be hashed in any order, as their bytes become final.
    /// </summary>
    public static void HashChunks(byte* data, long length, byte[] digests, Func<int, bool> wanted, bool releaseChunks = false, int threads = 0)
    {
        var start = (nint)data;
        Parallel.For(0, Chunks(length), new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, i =>
        {
            if (!wanted(i)) return;
            HashChunk((byte*)start, length, i, digests);
            if (releaseChunks) Weights.PageAdvice.ReleaseFileBacked(start + (nint)((long)i * ChunkBytes), (int)Math.Min(ChunkBytes, length - (long)i * ChunkBytes));
        });
    }

    /// <summary>The digest of chunk <paramref name="chunk"/>, written to <paramref name="digests"/> at 16 · <paramref name="chunk"/>.</summary>
    public static void HashChunk(byte* data, long length, int chunk, byte[] digests)
    {
        var at = (long)chunk * ChunkBytes;
        var count = (int)Math.Min(ChunkBytes, length - at);
        XxHash128.Hash(new ReadOnlySpan<byte>(data + at, count), digests.AsSpan(chunk * DigestBytes, DigestBytes));
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

    /// <summary>
    /// The hash of <paramref name="length"/> bytes from their chunks' digests, in order. One chunk: its digest is the
    /// hash. Several: their digests hashed, seeded with the length, so that no content of one chunk that happens to
    /// equal a list of digests shares its hash.
    /// </summary>
    public static string Combine(byte[] digests, long length) => Convert.ToHexStringLower(
        length <= ChunkBytes ? digests : XxHash128.Hash(digests, length));
}
