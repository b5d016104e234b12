using System.Runtime.InteropServices;

namespace Kiln.Cache;

/// <summary>
/// Which file, in which state: device, inode, size and the modification and status-change times with
/// nanoseconds (stat, links followed, as a checkpoint's files are). Any write to a file changes its
/// ctime, even when its mtime is put back with `touch -r`, so an unchanged identity means unchanged bytes.
/// </summary>
public readonly partial record struct FileIdentity(ulong Device, ulong Inode, long Size, long MtimeNs, long CtimeNs)
{
    // struct stat on Linux x86-64 (144 bytes): st_dev 0, st_ino 8, st_size 48, st_mtim 88 (s) / 96 (ns), st_ctim 104 / 112.
    private const int StatSize = 144;

    public static FileIdentity Of(string path)
    {
        var buffer = new byte[StatSize];
        if (Stat(path, buffer) != 0) throw new IOException($"{path}: stat failed (errno {Marshal.GetLastPInvokeError()})");
        return FromStat(buffer);
    }

    /// <summary>The identity of an open file (fstat: the file that was opened, whatever its path names now).</summary>
    public static FileIdentity Of(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        var buffer = new byte[StatSize];
        if (Fstat((int)handle.DangerousGetHandle(), buffer) != 0) throw new IOException($"fstat failed (errno {Marshal.GetLastPInvokeError()})");
        return FromStat(buffer);
    }

    private static FileIdentity FromStat(byte[] buffer)
    {
        static long Nanoseconds(byte[] b, int at) => checked(BitConverter.ToInt64(b, at) * 1_000_000_000 + BitConverter.ToInt64(b, at + 8));
        return new(BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8), BitConverter.ToInt64(buffer, 48),
            Nanoseconds(buffer, 88), Nanoseconds(buffer, 104));
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int Fstat(int fd, byte[] buffer);
}
