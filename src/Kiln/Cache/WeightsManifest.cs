namespace Kiln.Cache;

/// <summary>
/// weights.json of a weights folder (&lt;entry&gt;/weights-&lt;key&gt;/), written last: the graph entry it
/// belongs to, the content hash of every checkpoint file the products were computed from (with the
/// graph key, what formed <see cref="Key"/>), and the size and XXH3-128 of each rank's file.
/// </summary>
public sealed record WeightsManifest(
    int SchemaVersion,
    string GraphKey,
    string Key,
    List<ContentComponent> Content,
    List<WeightsFileRecord> Files,
    int WorldSize,
    DateTimeOffset Created,
    double ComputeMs);

/// <summary>A checkpoint file (name relative to the checkpoint folder) and the XXH3-128 of its bytes.</summary>
public sealed record ContentComponent(string File, string Xxh3);

/// <summary>A file of the weights folder, relative to it, with its size and XXH3-128.</summary>
public sealed record WeightsFileRecord(string Path, long Bytes, string Xxh3);
