namespace Kiln.Cache;

/// <summary>
/// Everything Kiln creates in a cache is private to its user: directories 0700, files 0600, set at
/// creation whatever the umask (a umask can only take bits away, never add group or other write).
/// </summary>
public static class PrivateFiles
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="path"/> and any missing parent as 0700 (existing ones are left as they are).</summary>
    public static void CreateDirectory(string path)
    {
        // Directory.CreateDirectory(path, mode) gives the mode to the last folder only; missing parents would
        // get 0777 less the umask. So each missing folder is created by itself, outermost first.
        var missing = new Stack<string>();
        for (var folder = Path.GetFullPath(path); !Directory.Exists(folder); folder = Path.GetDirectoryName(folder)!) missing.Push(folder);
        while (missing.TryPop(out var folder)) Directory.CreateDirectory(folder, DirectoryMode);
    }

    /// <summary>A new file, created 0600; fails if the path exists.</summary>
    public static FileStream CreateNew(string path, FileShare share = FileShare.None, FileAccess access = FileAccess.Write) => new(path, new FileStreamOptions
    {
        Mode = System.IO.FileMode.CreateNew,
        Access = access,
        Share = share,
        UnixCreateMode = FileMode,
    });

    /// <summary>Opens or creates (0600) a file for reading and writing.</summary>
    public static FileStream OpenOrCreate(string path, FileShare share) => new(path, new FileStreamOptions
    {
        Mode = System.IO.FileMode.OpenOrCreate,
        Access = FileAccess.ReadWrite,
        Share = share,
        UnixCreateMode = FileMode,
    });
}
