using System.Runtime.InteropServices;

namespace Kiln.Cache;

/// <summary>
/// Whether a cache root may be read: it must belong to the current user and not be writable by
/// group or others, since anyone who can write a cache decides what graph a run executes.
/// </summary>
public static partial class RootTrust
{
    /// <summary>Null when the root is trusted, else the reason it is not.</summary>
    public static string? Check(string root)
    {
        var mode = File.GetUnixFileMode(root);
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            return $"{root} is writable by group or others (mode {Convert.ToString((int)mode, 8)})";
        var owner = OwnerOf(root);
        var me = GetUid();
        return owner == me ? null : $"{root} belongs to user id {owner}, not to the current user ({me})";
    }

    private static uint OwnerOf(string path)
    {
        // struct stat on Linux x86-64: st_uid is the 32-bit field at byte offset 28.
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0) throw new IOException($"{path}: stat failed (errno {Marshal.GetLastPInvokeError()})");
        return BitConverter.ToUInt32(buffer, 28);
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "getuid")]
    private static partial uint GetUid();
}
