using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Kiln;

/// <summary>
/// Opens a file of a checkpoint folder for reading only when it is a regular file. A FIFO, device,
/// socket or directory in its place is refused: opening a FIFO the usual way waits for a writer forever.
/// </summary>
public static partial class RegularFile
{
    private const int ReadOnly = 0, NonBlocking = 0x800, CloseOnExec = 0x80000;
    private const uint TypeMask = 0xF000, RegularType = 0x8000;
    private const int NoSuchFile = 2;

    /// <summary>An unbuffered read-only stream of <paramref name="path"/> (links are followed; the target must be a regular file).</summary>
    public static FileStream OpenRead(string path)
    {
        // O_NONBLOCK makes open() return at once for a FIFO; the type is then read from the open handle, so
        // nothing can be swapped in between the check and the use.
        var fd = Open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == NoSuchFile
                ? new KilnException($"{path}: file not found")
                : new KilnException($"{path}: cannot open: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var mode = FileMode(path, handle);
            if ((mode & TypeMask) != RegularType)
                throw new KilnException($"{path}: not a regular file ({TypeName(mode & TypeMask)})");
            return new FileStream(handle, FileAccess.Read, bufferSize: 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static uint FileMode(string path, SafeFileHandle handle)
    {
        // struct stat on Linux x86-64: st_mode is the 32-bit field at byte offset 24.
        var buffer = new byte[256];
        if (FStat(handle, buffer) != 0)
            throw new KilnException($"{path}: cannot read its type: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        return BitConverter.ToUInt32(buffer, 24);
    }

    private static string TypeName(uint type) => type switch
    {
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x4000 => "a directory",
        0x6000 => "a block device",
        0xC000 => "a socket",
        _ => $"file type 0x{type:x}",
    };

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStat(SafeFileHandle fd, byte[] buffer);
}
