namespace Kiln.Weights;

/// <summary>
/// Advice to the kernel about mapped memory (madvise). Advice only: ignored where the system does not take it
/// (another OS, an older kernel), and the memory works the same either way.
/// </summary>
public static class PageAdvice
{
    private const int MadvDontNeed = 4;
    private const int MadvHugePage = 14;
    private const int MadvPopulateRead = 22;

    /// <summary>
    /// Unmaps the whole pages within <paramref name="length"/> bytes at <paramref name="start"/> (MADV_DONTNEED).
    /// Only for memory mapped from a file: its pages stay in the page cache and read the same if touched again,
    /// but no longer count in the process's resident memory (anonymous memory would read back as zeros).
    /// </summary>
    public static void ReleaseFileBacked(nint start, long length)
    {
        long page = Environment.SystemPageSize;
        var (first, end) = ((start + page - 1) / page * page, (start + length) / page * page);
        if (OperatingSystem.IsLinux() && end > first) _ = madvise((nint)first, (nuint)(end - first), MadvDontNeed);
    }

    /// <summary>
    /// Asks for 2 MiB pages (MADV_HUGEPAGE) for the page-aligned range: transparent huge pages for anonymous
    /// memory, and for a file mapping, 2 MiB page-cache folios where the filesystem keeps large folios (ext4
    /// since Linux 6.16), mapped as huge pages.
    /// </summary>
    public static void OfferHugePages(nint start, long length)
    {
        if (OperatingSystem.IsLinux() && length > 0) _ = madvise(start, (nuint)length, MadvHugePage);
    }

    /// <summary>
    /// Maps every page of the page-aligned range into the process in one call (MADV_POPULATE_READ, Linux
    /// 5.14), instead of one page fault per page as the memory is first touched.
    /// </summary>
    public static void PopulateRead(nint start, long length)
    {
        if (OperatingSystem.IsLinux() && length > 0) _ = madvise(start, (nuint)length, MadvPopulateRead);
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int madvise(nint address, nuint length, int advice);
}
