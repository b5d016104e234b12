using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Cache;

/// <summary>
/// What the kernel says about a path or an open file (lstat, fstat): its type, mode bits and owner.
/// Cache reads go through here so that a link, a FIFO or a device in a cache directory is seen for
/// what it is, never followed or opened as if it were the file the manifest names.
/// </summary>
public readonly partial record struct FileStatus(uint Mode, uint Owner)
{
    // S_IFMT and the types under it (sys/stat.h).
    private const uint TypeMask = 0xF000;
    private const uint RegularType = 0x8000;
    private const uint DirectoryType = 0x4000;
    private const uint LinkType = 0xA000;

    // O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC on Linux x86-64: a link is refused (ELOOP) and a FIFO
    // opens at once instead of waiting for a writer, so its type can be checked and refused.
    private const int ReadNoFollow = 0x20000 | 0x800 | 0x80000;
    private const int LinkLoopErrno = 40; // ELOOP
    private const int NoEntryErrno = 2; // ENOENT
    private const int DeniedErrno = 13; // EACCES

    public bool IsRegularFile => (Mode & TypeMask) == RegularType;

    public bool IsDirectory => (Mode & TypeMask) == DirectoryType;

    public bool IsLink => (Mode & TypeMask) == LinkType;

    /// <summary>The permission bits (rwx for user, group, others).</summary>
    public UnixFileMode Permissions => (UnixFileMode)(Mode & 0x1FF);

    /// <summary>"a link", "a FIFO", "a directory": what the path is, for a miss reason.</summary>
    public string Kind => (Mode & TypeMask) switch
    {
        RegularType => "a regular file",
        DirectoryType => "a directory",
        LinkType => "a link",
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        _ => "an unknown kind of file",
    };

    /// <summary>The path itself, not what a link there points to; null when nothing is there.</summary>
    public static FileStatus? OfPath(string path)
    {
        var buffer = new byte[StatSize];
        if (LStat(path, buffer) == 0) return FromBuffer(buffer);
        var errno = Marshal.GetLastPInvokeError();
        return errno == NoEntryErrno ? null : throw new IOException($"{path}: lstat failed (errno {errno})");
    }

    /// <summary>What a path resolves to, following links (the cache root may be reached through one).</summary>
    public static FileStatus OfTarget(string path)
    {
        var buffer = new byte[StatSize];
        if (Stat(path, buffer) != 0) throw new IOException($"{path}: stat failed (errno {Marshal.GetLastPInvokeError()})");
        return FromBuffer(buffer);
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading if it is a regular file, without following a link in its
    /// last component; the type is checked on the open handle, so nothing can be swapped in between.
    /// A link, FIFO, device or directory is a <see cref="CorruptEntryException"/> naming <paramref name="name"/>.
    /// </summary>
    public static FileStream OpenRegularFile(string path, string name)
    {
        var fd = Open(path, ReadNoFollow);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                LinkLoopErrno => new CorruptEntryException($"{name} is a link"),
                NoEntryErrno => new CorruptEntryException($"{name} is missing"),
                DeniedErrno => new UnauthorizedAccessException($"{name}: permission denied"),
                _ => new IOException($"{name}: cannot open (errno {errno})"),
            };
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var buffer = new byte[StatSize];
            if (FStat(fd, buffer) != 0) throw new IOException($"{name}: fstat failed (errno {Marshal.GetLastPInvokeError()})");
            var status = FromBuffer(buffer);
            if (!status.IsRegularFile) throw new CorruptEntryException($"{name} is {status.Kind}, not a regular file");
            return new FileStream(handle, FileAccess.Read, bufferSize: 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    // struct stat on Linux x86-64 is 144 bytes: st_mode is the 32-bit field at offset 24, st_uid at 28.
    private const int StatSize = 144;

    private static FileStatus FromBuffer(byte[] buffer) => new(BitConverter.ToUInt32(buffer, 24), BitConverter.ToUInt32(buffer, 28));

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStat(string path, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStat(int fd, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);
}
