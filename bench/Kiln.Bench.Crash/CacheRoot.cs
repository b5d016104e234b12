using Kiln.Cache;

namespace Kiln.Bench.Crash;

/// <summary>A cache root as the crash bench sees it: published entries, staging leftovers, and whether every entry verifies.</summary>
internal sealed class CacheRoot(string root)
{
    public string Root { get; } = root;

    private string Pipeline => Path.Combine(Root, "pipeline");

    /// <summary>Published entries: directories under pipeline/ whose names do not start with '.'.</summary>
    public IReadOnlyList<string> Entries() => Directories().Where(d => !Path.GetFileName(d).StartsWith('.')).ToList();

    /// <summary>Staging (and trash) folders: a save in progress, or one a kill left.</summary>
    public IReadOnlyList<string> Leftovers() => Directories().Where(d => Path.GetFileName(d).StartsWith('.')).ToList();

    /// <summary>
    /// Entries a restore could see that are not complete: a manifest missing, unreadable or for another
    /// key, a file that does not match its size and SHA-256, or a weights folder whose manifest or rank
    /// files do not match (each with why).
    /// </summary>
    public IReadOnlyList<string> PartialEntries()
    {
        var partial = new List<string>();
        foreach (var entry in Entries())
        {
            try
            {
                var manifest = SnapshotStore.ReadManifest(entry);
                if (manifest.Key != Path.GetFileName(entry)) throw new CorruptEntryException($"manifest key {manifest.Key}");
                SnapshotStore.VerifyFiles(entry, manifest);
                // The weights tier's folders inside the entry: published whole, or not at all.
                foreach (var weights in Directory.EnumerateDirectories(entry, WeightsTier.FolderPrefix + "*"))
                {
                    if (WeightsTier.Check(weights) is { } problem) throw new CorruptEntryException(problem);
                }
            }
            catch (Exception e)
            {
                partial.Add($"{Path.GetFileName(entry)}: {e.GetType().Name}: {e.Message}");
            }
        }
        return partial;
    }

    /// <summary>The entry of the last snapshot point (highest index), or null.</summary>
    public string? FinalEntry() => Entries().MaxBy(e => SnapshotStore.ReadManifest(e).Point.Index);

    /// <summary>Copies the root, every folder 0700 and file 0600 as Kiln creates them (so the copy is as trusted as the original).</summary>
    public void CopyTo(string destination)
    {
        CreatePrivateDirectory(destination);
        foreach (var directory in Directory.EnumerateDirectories(Root, "*", SearchOption.AllDirectories))
            CreatePrivateDirectory(Path.Combine(destination, Path.GetRelativePath(Root, directory)));
        foreach (var file in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories))
            WritePrivateFile(Path.Combine(destination, Path.GetRelativePath(Root, file)), File.ReadAllBytes(file));
    }

    public static void CreatePrivateDirectory(string path) =>
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    public static void WritePrivateFile(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private IEnumerable<string> Directories() =>
        Directory.Exists(Pipeline) ? Directory.EnumerateDirectories(Pipeline).Order(StringComparer.Ordinal) : [];
}
