using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Kiln.Cache;

/// <summary>
/// Reads a cache manifest (an entry's manifest.json, a weights folder's weights.json) strictly: a regular
/// file opened without following a link, at most <see cref="MaxBytes"/>, strict UTF-8, JSON the
/// source-generated <paramref name="type"/> accepts (no duplicated properties). Any problem is a
/// <see cref="CorruptEntryException"/> naming the file; the caller checks the fields' ranges.
/// </summary>
public static class ManifestReader
{
    /// <summary>Largest manifest read: a real one is a few kB.</summary>
    public const int MaxBytes = 1 << 20;

    public static T Read<T>(string directory, string name, JsonTypeInfo<T> type) where T : class
    {
        byte[] bytes;
        using (var stream = FileStatus.OpenRegularFile(Path.Combine(directory, name), name))
        {
            if (stream.Length > MaxBytes) throw new CorruptEntryException($"{name} has {stream.Length} bytes, more than the {MaxBytes} a manifest may have");
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        try
        {
            return JsonSerializer.Deserialize(StrictUtf8.Decode(bytes, name), type) ?? throw new CorruptEntryException($"{name} is null");
        }
        catch (JsonException e)
        {
            throw new CorruptEntryException($"{name}: {e.Message}");
        }
    }
}
