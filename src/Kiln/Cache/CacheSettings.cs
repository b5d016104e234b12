namespace Kiln.Cache;

/// <summary>Whether the checkpoint fingerprint covers tensor headers only, or tensor bytes too.</summary>
public enum FingerprintMode { Headers, Content }

/// <summary>Where the cache lives and how a run may use it. Runtime-only settings never enter a key.</summary>
public sealed record CacheSettings(
    string Root,
    CacheMode Mode = CacheMode.ReadWrite,
    long MaxBytes = CacheSettings.DefaultMaxBytes,
    bool TrustSharedRoot = false,
    FingerprintMode Fingerprint = FingerprintMode.Headers,
    bool VerifyOnHit = false,
    TimeSpan? LockTimeout = null)
{
    public const long DefaultMaxBytes = 10L * 1024 * 1024 * 1024;

    /// <summary>How long a process waits for another one compiling the same key before it compiles uncached.</summary>
    public TimeSpan EffectiveLockTimeout => LockTimeout ?? TimeSpan.FromMinutes(10);

    public static CacheSettings Disabled { get; } = new("", CacheMode.Off);

    /// <summary>The root: <paramref name="explicitRoot"/>, else $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.</summary>
    public static string ResolveRoot(string? explicitRoot = null)
    {
        if (!string.IsNullOrEmpty(explicitRoot)) return Path.GetFullPath(explicitRoot);
        if (Environment.GetEnvironmentVariable("KILN_CACHE_DIR") is { Length: > 0 } kiln) return Path.GetFullPath(kiln);
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(Path.GetFullPath(xdg), "kiln");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kiln");
    }

    /// <summary>Folder of published entries: &lt;root&gt;/pipeline.</summary>
    public string PipelineDirectory => Path.Combine(Root, "pipeline");
}
