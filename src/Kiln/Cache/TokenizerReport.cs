namespace Kiln.Cache;

/// <summary>
/// What the tokenizer tier did in one run: "hit" (loaded from the entry's folder), "miss" (prepared from the
/// model's files, and saved when <see cref="Saved"/>) or "off" (not used, <see cref="Reason"/> says why).
/// </summary>
public sealed record TokenizerReport(string Status, string? Reason, string? Key, double Ms, bool Saved = false)
{
    /// <summary>How <see cref="Reason"/> starts when a saved folder failed its check.</summary>
    public const string UnusablePrefix = "tokenizer folder unusable";
}
