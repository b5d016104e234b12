namespace Kiln.Cache;

/// <summary>
/// What the snapshot cache did in one run: <see cref="Status"/> is "hit", "miss" or "off"; a hit names
/// the point restored and the time saved (and, at an earlier point, why the later one was not used in
/// <see cref="Reason"/>), a miss its reason. Warnings (untrusted root, failed save)
/// never fail a run. <see cref="FinalKey"/> is the key of the entry after the last transform, which holds
/// the weights tier (null when the pipeline's last snapshot point is not after its last transform).
/// </summary>
public sealed record CacheReport(
    string Status,
    string? Point,
    string? Reason,
    string? Key,
    double RestoreMs,
    double SavedMs,
    int Published,
    double SaveMs,
    IReadOnlyList<string> Warnings,
    string? FinalKey = null)
{
    public static CacheReport Off(string reason, IReadOnlyList<string>? warnings = null) => new("off", null, reason, null, 0, 0, 0, 0, warnings ?? []);

    /// <summary>One line for people: "cache hit at ... ", "cache miss (...)".</summary>
    public string Summary => Status switch
    {
        "hit" => $"cache hit at {Point} (key {Key?[..16]}): restored in {RestoreMs:F0} ms, saved {SavedMs:F0} ms" +
            (Reason is null ? "" : $"; later point not used: {Reason}"),
        "miss" => $"cache miss ({Reason}); compiled and saved {Published} snapshot(s) in {SaveMs:F0} ms",
        _ => $"cache off ({Reason})",
    };
}
