using System.Runtime.InteropServices;

namespace Kiln.Cache;

/// <summary>
/// Writes that survive a crash: file contents and directory entries are flushed to disk (fsync)
/// before the step that makes them visible.
/// </summary>
public static partial class DurableFiles
{
    /// <summary>Writes a new file (0600) and flushes it to disk.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        using var stream = PrivateFiles.CreateNew(path);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>fsync of a directory, so the names created or renamed in it are on disk.</summary>
    public static void SyncDirectory(string path)
    {
        var fd = Open(path, ReadOnlyDirectory);
        if (fd < 0) throw new IOException($"{path}: cannot open the directory to flush it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (FSync(fd) != 0) throw new IOException($"{path}: fsync failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>rename(2): moves whatever is at <paramref name="from"/> (a directory, a file, a link itself, never its target).</summary>
    public static void Rename(string from, string to)
    {
        if (RenamePath(from, to) != 0) throw new IOException($"{from}: cannot rename to {to} (errno {Marshal.GetLastPInvokeError()})");
    }

    // O_RDONLY | O_DIRECTORY on Linux x86-64.
    private const int ReadOnlyDirectory = 0x10000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenamePath(string from, string to);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
