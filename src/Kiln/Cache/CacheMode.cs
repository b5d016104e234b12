namespace Kiln.Cache;

/// <summary>How a run uses the pipeline snapshot cache.</summary>
public enum CacheMode
{
    /// <summary>Restore from valid entries and save new ones (the default).</summary>
    ReadWrite,

    /// <summary>Restore from valid entries, never write (a cache shipped in a read-only image).</summary>
    ReadOnly,

    /// <summary>No cache at all (<c>--no-cache</c>).</summary>
    Off,
}
