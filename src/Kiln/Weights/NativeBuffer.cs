using System.Runtime.InteropServices;

namespace Kiln.Weights;

/// <summary>
/// Native memory for weights a load recipe produces (concatenations, casts), aligned to 64 bytes (a
/// cache line, and enough for any vector width ONNX Runtime uses), freed on dispose or, if forgotten,
/// by the finalizer. Buffers of 2 MiB and more are mapped pages that the kernel is asked to back with
/// transparent huge pages: decode streams every weight once per token, and with 4 KiB pages the
/// address translations of a fragmented buffer slowed that stream by up to a quarter
/// (docs/performance.md).
/// </summary>
internal sealed unsafe class NativeBuffer : SafeHandle
{
    public const int Alignment = 64;

    /// <summary>Smallest buffer that is mapped and offered huge pages (one huge page).</summary>
    public const long HugePageBytes = 2L << 20;

    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapPrivateAnonymous = 0x02 | 0x20;

    private readonly bool _mapped;

    public NativeBuffer(long byteLength) : base(0, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteLength);
        ByteLength = byteLength;
        if (byteLength >= HugePageBytes && OperatingSystem.IsLinux())
        {
            var address = mmap(0, (nuint)byteLength, ProtReadWrite, MapPrivateAnonymous, -1, 0);
            if (address == -1) throw new OutOfMemoryException($"cannot map {byteLength} bytes for a weight (errno {Marshal.GetLastPInvokeError()})");
            SetHandle(address);
            _mapped = true;
            // Advice only: without huge pages available the mapping still works with small ones.
            PageAdvice.OfferHugePages(address, byteLength);
            return;
        }
        // A zero-byte request still gets a real allocation, so the pointer is never null.
        SetHandle((nint)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), Alignment));
    }

    public long ByteLength { get; }

    public nint Pointer => handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        if (_mapped) munmap(handle, (nuint)ByteLength);
        else NativeMemory.AlignedFree((void*)handle);
        return true;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [DllImport("libc", SetLastError = true)]
    private static extern int munmap(nint address, nuint length);
}
