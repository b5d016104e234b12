namespace Kiln.Cache;

/// <summary>
/// What the weights tier did in one run: "hit" (products mapped from the entry), "miss" (computed, and
/// saved unless <see cref="Saved"/> is false) or "off" (not used, <see cref="Reason"/> says why).
/// </summary>
public sealed record WeightsReport(string Status, string? Reason, string? Key, double Ms, int Products, long Bytes, bool Saved, IReadOnlyList<string> Warnings)
{
    public static WeightsReport Off(string reason, IReadOnlyList<string>? warnings = null) => new("off", reason, null, 0, 0, 0, false, warnings ?? []);

    /// <summary>One line for people: "weights hit ...", "weights miss (...)".</summary>
    public string Summary => Status switch
    {
        "hit" => $"weights hit (key {Key?[..16]}): {Products} product(s), {Bytes / 1048576.0:F1} MiB mapped in {Ms:F0} ms",
        "miss" => $"weights miss ({Reason}); computed {Products} product(s), {Bytes / 1048576.0:F1} MiB" + (Saved ? ", and saved them," : "") + $" in {Ms:F0} ms",
        _ => $"weights not cached ({Reason})",
    };
}
