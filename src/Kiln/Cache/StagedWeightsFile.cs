using System.Runtime.InteropServices;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// A weights file (<see cref="WeightsFile"/>) being made in a staging folder, mapped shared and writable:
/// the load recipes write their products straight into their places in it. A start that saves its products
/// so computes them once, into the page cache that the next start maps, instead of into memory and then
/// through write(2) a second time. The mapping stays valid after the file is renamed into the cache or
/// deleted, so the products it holds serve the run either way; it is unmapped on dispose.
/// </summary>
public sealed unsafe class StagedWeightsFile : IDisposable
{
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapShared = 0x01;

    private nint _address;
    private readonly long _length;
    private readonly string _relativePath;

    private StagedWeightsFile(nint address, long length, string relativePath, Dictionary<string, nint> places)
    {
        (_address, _length, _relativePath) = (address, length, relativePath);
        Places = places;
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
        return new StagedWeightsFile(address, length, relativePath, offsets.ToDictionary(o => o.Key, o => address + (nint)o.Value, StringComparer.Ordinal));
    }

    /// <summary>The file's size and XXH3-128, once every product is in place.</summary>
    public WeightsFileRecord Complete()
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        return new WeightsFileRecord(_relativePath, _length, ChunkedHash.Of((byte*)_address, _length));
    }

    public void Dispose()
    {
        if (_address == 0) return;
        munmap(_address, (nuint)_length);
        _address = 0;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    // Returns the error number itself (0 on success), not -1 and errno.
    [DllImport("libc")]
    private static extern int posix_fallocate(int fd, long offset, long length);

    [DllImport("libc", SetLastError = true)]
    private static extern int munmap(nint address, nuint length);
}
