using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// A weights file (<see cref="WeightsFile"/>) being made in a staging folder, mapped shared and writable:
/// the load recipes write their products straight into their places in it. A start that saves its products
/// so computes them once, into the page cache that the next start maps, instead of into memory and then
/// through write(2) a second time. The mapping stays valid after the file is renamed into the cache or
/// deleted, so the products it holds serve the run either way; it is unmapped on dispose. Its checksum is made
/// chunk by chunk as the products are written (<see cref="HashAsWritten"/>), beside the products still to come.
/// </summary>
public sealed unsafe class StagedWeightsFile : IDisposable
{
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapShared = 0x01;

    private nint _address;
    private readonly long _length;
    private readonly string _relativePath;

    // Hashing as the products are written: each chunk's digest (ChunkedHash) once every product on it is in place.
    private readonly Dictionary<string, (long Start, long End)> _spans;
    private readonly int[] _unwritten; // per chunk: products on it not yet written
    private readonly byte[] _digests;
    private readonly bool[] _hashed;
    private readonly Lock _writtenLock = new();
    private BlockingCollection<int>? _finalChunks;
    private Task? _hasher;
    private volatile bool _stopping;

    private StagedWeightsFile(nint address, long length, string relativePath, Dictionary<string, nint> places, Dictionary<string, (long, long)> spans)
    {
        (_address, _length, _relativePath) = (address, length, relativePath);
        Places = places;
        _spans = spans;
        var chunks = ChunkedHash.Chunks(length);
        (_unwritten, _digests, _hashed) = (new int[chunks], new byte[chunks * ChunkedHash.DigestBytes], new bool[chunks]);
        foreach (var (start, end) in spans.Values)
            for (var c = ChunkOf(start); c <= ChunkOf(end - 1); c++) _unwritten[c]++;
    }

    /// <summary>Where each product's bytes go (page-aligned), by parameter name.</summary>
    public IReadOnlyDictionary<string, nint> Places { get; }

    /// <summary>Creates the private file <paramref name="path"/> sized for <paramref name="products"/>, with its header written.</summary>
    public static StagedWeightsFile Create(string path, string relativePath, IReadOnlyList<WeightsFile.Product> products)
    {
        var (header, offsets, length) = WeightsFile.Layout(products);
        nint address;
        using (var stream = PrivateFiles.CreateNew(path, access: FileAccess.ReadWrite))
        {
            // Blocks are reserved up front: a full disk is an error here, where a write into a mapped hole would
            // kill the process (SIGBUS).
            if (posix_fallocate((int)stream.SafeFileHandle.DangerousGetHandle(), 0, length) is var error and not 0)
                throw new IOException($"cannot reserve {length} bytes for {relativePath}: errno {error}");
            address = mmap(0, (nuint)length, ProtReadWrite, MapShared, (int)stream.SafeFileHandle.DangerousGetHandle(), 0);
            if (address == -1) throw new IOException($"cannot map {relativePath} ({length} bytes) for writing: errno {Marshal.GetLastPInvokeError()}");
            // The products' pages made as 2 MiB folios, which this run and every later start's mapping map as huge pages.
            PageAdvice.OfferHugePages(address, length);
        }
        BitConverter.TryWriteBytes(new Span<byte>((void*)address, 8), (ulong)header.Length);
        header.CopyTo(new Span<byte>((void*)(address + 8), header.Length));
        // The padding between products is already zero: reserved blocks read as zeros.
        var spans = products.ToDictionary(p => p.Name, p => (offsets[p.Name], offsets[p.Name] + p.ByteLength), StringComparer.Ordinal);
        return new StagedWeightsFile(address, length, relativePath, offsets.ToDictionary(o => o.Key, o => address + (nint)o.Value, StringComparer.Ordinal), spans);
    }

    /// <summary>
    /// Starts hashing the file on one thread as its products are written (<see cref="Written"/>), once
    /// <paramref name="after"/> has finished (other work of the start, left its core until then), so that
    /// <see cref="Complete"/>, which the session waits for, finds most of the file hashed: each chunk of the file is
    /// hashed once every product on it is in place.
    /// </summary>
    public void HashAsWritten(Task? after)
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        if (_hasher is not null) throw new InvalidOperationException("the file is already being hashed");
        _finalChunks = [];
        lock (_writtenLock)
            for (var c = 0; c < _unwritten.Length; c++)
                if (_unwritten[c] == 0) _finalChunks.Add(c);
        var chunks = _finalChunks;
        _hasher = Task.Run(() =>
        {
            // Waits without taking on the other work's failure: that is its caller's to hear.
            if (after is not null) Task.WhenAny(after).Wait();
            foreach (var chunk in chunks.GetConsumingEnumerable())
            {
                if (_stopping) return;
                ChunkedHash.HashChunk((byte*)_address, _length, chunk, _digests);
                _hashed[chunk] = true;
            }
        });
    }

    /// <summary>Says that product <paramref name="name"/> is in its place and will not change; other names are ignored.</summary>
    public void Written(string name)
    {
        lock (_writtenLock)
        {
            if (!_spans.Remove(name, out var span)) return;
            for (var c = ChunkOf(span.Start); c <= ChunkOf(span.End - 1); c++)
                if (--_unwritten[c] == 0) _finalChunks?.Add(c);
        }
    }

    /// <summary>
    /// The file's size and XXH3-128, once every product is in place: the hashing as written stops, and the chunks it
    /// has not hashed are hashed here on every core but one (a single process completes the file while it creates its
    /// session).
    /// </summary>
    public WeightsFileRecord Complete()
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        StopHashing();
        ChunkedHash.HashChunks((byte*)_address, _length, _digests, chunk => !_hashed[chunk], threads: ChunkedHash.BesideOtherWork);
        return new WeightsFileRecord(_relativePath, _length, ChunkedHash.Combine(_digests, _length));
    }

    public void Dispose()
    {
        if (_address == 0) return;
        // The hasher reads the mapping: it stops before the mapping goes.
        StopHashing();
        munmap(_address, (nuint)_length);
        _address = 0;
    }

    // Stops the hasher after the chunk it is on; a chunk it did not finish (or failed on) is not marked hashed.
    private void StopHashing()
    {
        if (_finalChunks is null) return;
        _stopping = true;
        _finalChunks.CompleteAdding();
        ((IAsyncResult)_hasher!).AsyncWaitHandle.WaitOne();
        _finalChunks.Dispose();
        (_finalChunks, _hasher) = (null, null);
    }

    private static int ChunkOf(long offset) => (int)(offset / ChunkedHash.ChunkBytes);

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    // Returns the error number itself (0 on success), not -1 and errno.
    [DllImport("libc")]
    private static extern int posix_fallocate(int fd, long offset, long length);

    [DllImport("libc", SetLastError = true)]
    private static extern int munmap(nint address, nuint length);
}
