namespace Kiln.Weights;

/// <summary>Tells the kernel that file-backed memory need not stay resident in this process.</summary>
public static class ResidentPages
{
    private const int MadvDontNeed = 4;

    /// <summary>
    /// Unmaps the whole pages within <paramref name="length"/> bytes at <paramref name="start"/> (madvise
    /// MADV_DONTNEED). Only for memory mapped from a file: its pages stay in the page cache and read the
    /// same if touched again, but no longer count in the process's resident memory (anonymous memory would
    /// read back as zeros). Advice only: ignored where the system does not take it.
    /// </summary>
    public static void ReleaseFileBacked(nint start, long length)
    {
        long page = Environment.SystemPageSize;
        var (first, end) = ((start + page - 1) / page * page, (start + length) / page * page);
        if (OperatingSystem.IsLinux() && end > first) _ = madvise((nint)first, (nuint)(end - first), MadvDontNeed);
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int madvise(nint address, nuint length, int advice);
}
