using System.Text.RegularExpressions;

namespace Kiln.Cache;

/// <summary>
/// One key component, by name, that differs between an existing entry and the key a run would use:
/// a changed value (<see cref="EntryValue"/> and <see cref="RequestValue"/> both set), or a component
/// only one side has (a transform added, removed or moved, the layout once the prefix reaches sharding).
/// </summary>
public sealed partial record ComponentDifference(string Name, string? EntryValue, string? RequestValue)
{
    /// <summary>"transform.7.fuse_attention differs (entry ... vs request ...)", "layout only in the request (...)".</summary>
    public string Summary => (EntryValue, RequestValue) switch
    {
        (null, var request) => $"{Name} only in the request ({Shorten(request!)})",
        (var entry, null) => $"{Name} only in the entry ({Shorten(entry)})",
        var (entry, request) => $"{Name} differs (entry {Shorten(entry)} vs request {Shorten(request)})",
    };

    /// <summary>Compares two component lists by name: the request's order first, then names only the entry has.</summary>
    public static IReadOnlyList<ComponentDifference> Between(IReadOnlyList<KeyComponent> entry, IReadOnlyList<KeyComponent> request)
    {
        var entryValues = entry.ToDictionary(c => c.Name, c => c.Value, StringComparer.Ordinal);
        var requestNames = request.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var differences = new List<ComponentDifference>();
        foreach (var component in request)
        {
            if (!entryValues.TryGetValue(component.Name, out var value)) differences.Add(new(component.Name, null, component.Value));
            else if (value != component.Value) differences.Add(new(component.Name, value, component.Value));
        }
        differences.AddRange(entry.Where(c => !requestNames.Contains(c.Name)).Select(c => new ComponentDifference(c.Name, c.Value, null)));
        return differences;
    }

    // Digests are 64 hex digits; 12 tell them apart in a message.
    private static string Shorten(string value) => Digest().Replace(value, m => m.Value[..12] + "…");

    [GeneratedRegex("[0-9a-f]{64}")]
    private static partial Regex Digest();
}
