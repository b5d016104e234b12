using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Ops;

namespace Kiln.Cache;

/// <summary>
/// One rank's snapshot of a graph as two data-only files: graph.json (the IR with recipes, the runtime
/// signature and the history, shapes-valid reset) and buffers.safetensors (the buffers' bytes).
/// </summary>
public static class SnapshotFiles
{
    public const string GraphFile = "graph.json";
    public const string BuffersFile = "buffers.safetensors";

    /// <summary>
    /// Writes both files into <paramref name="directory"/> and flushes them to disk. Returns each file's
    /// name, size and SHA-256, hashed from the bytes as they were written, so publishing does not read
    /// the files back (the buffers are tens of MB on large models).
    /// </summary>
    public static IReadOnlyList<ManifestFile> Write(string directory, ModelGraph graph)
    {
        var document = GraphSerializer.ToDocument(graph);
        document = document with
        {
            Buffers = document.Buffers.Select(b => b with { Data = [] }).ToList(),
            // Shapes are re-verified on restore, not trusted from the file.
            History = document.History.Select(h => h with { ShapesValid = false }).ToList(),
        };
        // Unindented: the file is read on every warm start (an 80-layer graph's indentation is half its bytes).
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
            JsonSerializer.Serialize(writer, document, GraphJsonContext.Default.GraphDocument);
        var json = buffer.WrittenSpan.ToArray();
        DurableFiles.WriteAllBytes(Path.Combine(directory, GraphFile), json);

        var buffersPath = Path.Combine(directory, BuffersFile);
        // Created private here; the writer then opens the existing file, which keeps its mode.
        PrivateFiles.CreateNew(buffersPath).Dispose();
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var byName = graph.Buffers.ToDictionary(b => b.Name, StringComparer.Ordinal);
        using (var writer = SafetensorsWriter.Create(buffersPath, graph.Buffers.Select(b => new SafetensorsEntry(b.Name, b.Value.DType, b.Value.Shape.ToSizes())), digest: digest))
        {
            foreach (var entry in writer.Order) writer.WriteTensor(entry.Name, byName[entry.Name].Data);
            writer.Complete(); // flushes to disk
        }
        return
        [
            new ManifestFile(GraphFile, json.Length, Convert.ToHexStringLower(SHA256.HashData(json))),
            new ManifestFile(BuffersFile, new FileInfo(buffersPath).Length, Convert.ToHexStringLower(digest.GetHashAndReset())),
        ];
    }

    /// <summary>
    /// Builds a snapshot from the two files' bytes, as read and verified against the manifest (so what is
    /// parsed is exactly what was checked); any problem is a <see cref="GraphException"/> or <see cref="KilnException"/>.
    /// </summary>
    public static ModelGraph Read(byte[] graphJson, byte[] buffersSafetensors, OpRegistry registry)
    {
        var document = GraphSerializer.ReadDocument(graphJson);
        using var stream = new MemoryStream(buffersSafetensors, writable: false);
        var buffers = SafetensorsHeader.Read(BuffersFile, stream);
        var filled = document.Buffers.Select(b => buffers.Tensors.TryGetValue(b.Name, out var tensor)
            ? b with { Data = Copy(buffersSafetensors.AsSpan(checked((int)tensor.DataOffset), checked((int)tensor.ByteLength))) }
            : throw new GraphException($"buffer {b.Name} is missing from {BuffersFile}")).ToList();
        return GraphSerializer.FromDocument(document with { Buffers = filled }, registry);
    }

    // Every byte is overwritten, so the array is not zeroed first.
    private static byte[] Copy(ReadOnlySpan<byte> bytes)
    {
        var copy = GC.AllocateUninitializedArray<byte>(bytes.Length);
        bytes.CopyTo(copy);
        return copy;
    }
}
