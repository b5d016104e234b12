namespace Kiln.Cache;

/// <summary>The steps of saving a cache entry (a snapshot or a weights folder), in order.</summary>
public enum SaveStep
{
    /// <summary>The staging folder exists; nothing is in it yet.</summary>
    Staged,

    /// <summary>This rank's files are written in the staging folder.</summary>
    FilesWritten,

    /// <summary>The manifest is written (rank 0); the entry is not visible yet.</summary>
    ManifestWritten,

    /// <summary>The staging folder is renamed into place (rank 0): the entry is visible.</summary>
    Published,
}

/// <summary>
/// A step of a save just done, for whoever watches a save (the CLI's <c>--cache-progress</c>, the crash
/// tests that time their kills by it). <see cref="Entry"/> names what is saved: "snapshot KEY16" or
/// "weights KEY16".
/// </summary>
public readonly record struct SaveProgress(string Entry, SaveStep Step);
