using System.Text.Json.Serialization;

namespace Kiln.Cache;

/// <summary>
/// manifest.json of a cache entry, written last: what formed the key, where in the pipeline the
/// snapshot was taken, and the size and SHA-256 of every file, so a restore can trust nothing else.
/// </summary>
public sealed record SnapshotManifest(
    int SchemaVersion,
    int IrSchemaVersion,
    int RecipeSchemaVersion,
    string Key,
    PointInfo Point,
    List<KeyComponent> Components,
    List<ManifestFile> Files,
    string ToolVersion,
    int WorldSize,
    DateTimeOffset Created,
    double CompileMs);


/// <summary>A file of the entry, relative to the entry's folder.</summary>
public sealed record ManifestFile(string Path, long Bytes, string Sha256);

/// <summary>Persisted counts: hits, misses by reason, time saved.</summary>
public sealed record CacheStatistics(long Hits, SortedDictionary<string, long> Misses, long Quarantined, double SavedMs,
    long WeightsHits = 0, SortedDictionary<string, long>? WeightsMisses = null)
{
    public static CacheStatistics Empty => new(0, new SortedDictionary<string, long>(StringComparer.Ordinal), 0, 0);
}

// Strict reading: duplicated properties are refused and nesting is bounded (a manifest is 4 levels deep).
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true, AllowDuplicateProperties = false, MaxDepth = 16)]
[JsonSerializable(typeof(SnapshotManifest))]
[JsonSerializable(typeof(CacheStatistics))]
[JsonSerializable(typeof(WeightsManifest))]
[JsonSerializable(typeof(ContentHashMemo))]
[JsonSerializable(typeof(TokenizerFolderFacts))]
public sealed partial class CacheJsonContext : JsonSerializerContext;
