using Kiln.Graph;

namespace Kiln.Cache;

/// <summary>The result of looking up one snapshot: a restored graph, or the reason it could not be used.</summary>
public sealed record RestoreOutcome(ModelGraph? Graph, SnapshotManifest? Manifest, string? MissReason, bool Quarantined)
{
    /// <summary>The reason of a miss where no entry exists for the key.</summary>
    public const string NoEntry = "no entry";

    public bool Hit => Graph is not null;

    /// <summary>The entry failed a check: corrupt, whether or not it was quarantined yet.</summary>
    public bool Corrupt { get; init; }

    public static RestoreOutcome Restored(ModelGraph graph, SnapshotManifest manifest) => new(graph, manifest, null, false);

    /// <summary>A miss; the reason is made one printable line (it may quote a hostile entry's strings).</summary>
    public static RestoreOutcome Miss(string reason, bool quarantined = false) => new(null, null, OneLine(reason), quarantined);

    private const int MaxReasonLength = 400;

    private static string OneLine(string reason)
    {
        var line = new string(reason.Select(c => char.IsControl(c) ? ' ' : c).ToArray());
        return line.Length <= MaxReasonLength ? line : line[..MaxReasonLength] + "...";
    }
}
