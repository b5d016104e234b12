using System.Runtime.InteropServices;

namespace Kiln.Cache;

/// <summary>
/// Whether a cache may be read: the root and everything Kiln keeps in it (pipeline/, quarantine/,
/// locks/, stats.json, content-hashes.json, each entry directory) must belong to the current user and not be writable by
/// group or others, since anyone who can write a cache decides what graph a run executes. Only the
/// root may be reached through a link; a link anywhere below it is refused.
/// </summary>
public static partial class RootTrust
{
    /// <summary>What Kiln keeps directly under the root, checked with the root.</summary>
    public static readonly string[] RootChildren = ["pipeline", "quarantine", "locks", "stats.json", ContentHashes.MemoFile];

    /// <summary>Null when the root is trusted, else the reason it is not.</summary>
    public static string? Check(string root) => Judge(root, FileStatus.OfTarget(root));

    /// <summary>The root and its <see cref="RootChildren"/> that exist: null when all are trusted, else the first reason.</summary>
    public static string? CheckTree(string root) =>
        Check(root) ?? RootChildren.Select(child => CheckBelowRoot(Path.Combine(root, child))).FirstOrDefault(r => r is not null);

    /// <summary>The first of the root's <see cref="RootChildren"/> that is a link (refused even for a shared root), or null.</summary>
    public static string? LinkBelowRoot(string root) =>
        RootChildren.Select(child => Path.Combine(root, child)).Where(path => FileStatus.OfPath(path)?.IsLink == true)
            .Select(path => $"{path} is a link").FirstOrDefault();

    /// <summary>A path under the root (not followed if a link): null when it is absent or trusted, else the reason.</summary>
    public static string? CheckBelowRoot(string path) =>
        FileStatus.OfPath(path) is not { } status ? null
            : status.IsLink ? $"{path} is a link"
            : Judge(path, status);

    private static string? Judge(string path, FileStatus status)
    {
        if ((status.Permissions & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            return $"{path} is writable by group or others (mode {Convert.ToString((int)status.Permissions, 8)})";
        var me = GetUid();
        return status.Owner == me ? null : $"{path} belongs to user id {status.Owner}, not to the current user ({me})";
    }

    [LibraryImport("libc", EntryPoint = "getuid")]
    private static partial uint GetUid();
}
