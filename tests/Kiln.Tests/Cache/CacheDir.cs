using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// A private cache root for one test (a fresh temporary folder, deleted on dispose): runs `kiln` with
/// KILN_CACHE_DIR pointing at it, lists and validates its entries.
/// </summary>
public sealed class CacheDir : IDisposable
{
    private readonly TempDir _temp = new();

    /// <summary>The cache root (inside the temporary folder, so tests can also replace or remove it).</summary>
    public string Root => Path.Combine(_temp.Path, "cache");

    public string Pipeline => Path.Combine(Root, "pipeline");

    public string Quarantine => Path.Combine(Root, "quarantine");

    /// <summary>A scratch path next to the root, outside it.</summary>
    public string Outside(string name) => _temp.File(name);

    public CacheSettings Settings(CacheMode mode = CacheMode.ReadWrite) => new(Root, mode);

    public IReadOnlyDictionary<string, string> Environment(params (string Name, string Value)[] extra)
    {
        var environment = new Dictionary<string, string> { ["KILN_CACHE_DIR"] = Root };
        foreach (var (name, value) in extra) environment[name] = value;
        return environment;
    }

    public CliResult Run(params string[] args) => KilnCli.RunWith(_temp.Path, Environment(), args);

    /// <summary>The published entries: directories under pipeline/ whose names do not start with '.'.</summary>
    public IReadOnlyList<string> Entries() => Directory.Exists(Pipeline)
        ? Directory.EnumerateDirectories(Pipeline).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToList()
        : [];

    /// <summary>Folders under pipeline/ that a save left behind (staging or trash).</summary>
    public IReadOnlyList<string> Leftovers() => Directory.Exists(Pipeline)
        ? Directory.EnumerateDirectories(Pipeline).Where(d => Path.GetFileName(d).StartsWith('.')).ToList()
        : [];

    /// <summary>Every published entry has its manifest and files that match their sizes and checksums.</summary>
    public void AssertEntriesValid()
    {
        foreach (var entry in Entries())
        {
            var manifest = SnapshotStore.ReadManifest(entry);
            Assert.Equal(Path.GetFileName(entry), manifest.Key);
            SnapshotStore.VerifyFiles(entry, manifest);
            Assert.Contains(manifest.Files, f => f.Path == "rank_0/graph.json");
            Assert.Contains(manifest.Files, f => f.Path == "rank_0/buffers.safetensors");
        }
    }

    /// <summary>Every file and folder under the root with its size and modification time, to prove nothing was written.</summary>
    public IReadOnlyList<string> Listing() => Directory.Exists(Root)
        ? Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p):O}" : $"{p}/ {Directory.GetLastWriteTimeUtc(p):O}").ToList()
        : [];

    public void Dispose() => _temp.Dispose();
}
