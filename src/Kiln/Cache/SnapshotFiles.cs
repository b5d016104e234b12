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

    /// <summary>Writes both files into <paramref name="directory"/> and flushes them to disk.</summary>
    public static void Write(string directory, ModelGraph graph)
    {
        var document = GraphSerializer.ToDocument(graph);
        document = document with
        {
            Buffers = document.Buffers.Select(b => b with { Data = [] }).ToList(),
            // Shapes are re-verified on restore, not trusted from the file.
            History = document.History.Select(h => h with { ShapesValid = false }).ToList(),
        };
        DurableFiles.WriteAllBytes(Path.Combine(directory, GraphFile),
            Encoding.UTF8.GetBytes(JsonSerializer.Serialize(document, GraphJsonContext.Default.GraphDocument)));

        var buffersPath = Path.Combine(directory, BuffersFile);
        using (var writer = SafetensorsWriter.Create(buffersPath, graph.Buffers.Select(b => new SafetensorsEntry(b.Name, b.Value.DType, b.Value.Shape.ToSizes()))))
        {
            foreach (var entry in writer.Order) writer.WriteTensor(entry.Name, graph.Buffers.First(b => b.Name == entry.Name).Data);
            writer.Complete();
        }
        DurableFiles.Sync(buffersPath);
    }

    /// <summary>Reads a snapshot back; any problem is a <see cref="GraphException"/> or <see cref="KilnException"/>.</summary>
    public static ModelGraph Read(string directory, OpRegistry registry)
    {
        var document = GraphSerializer.ReadDocument(File.ReadAllText(Path.Combine(directory, GraphFile)));
        using var buffers = SafetensorsFile.Open(Path.Combine(directory, BuffersFile));
        var filled = document.Buffers.Select(b => buffers.Tensors.TryGetValue(b.Name, out var tensor)
            ? b with { Data = buffers.GetBytes(tensor).ToArray() }
            : throw new GraphException($"buffer {b.Name} is missing from {BuffersFile}")).ToList();
        return GraphSerializer.FromDocument(document with { Buffers = filled }, registry);
    }
}
