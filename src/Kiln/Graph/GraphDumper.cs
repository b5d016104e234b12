using Kiln.Graph.Json;

namespace Kiln.Graph;

/// <summary>
/// Writes a graph's text and JSON forms as NN_name.txt and NN_name.json into a folder, numbered in the order
/// given (e.g. after the export and after every transform of a pipeline).
/// </summary>
public sealed class GraphDumper
{
    private readonly string _directory;
    private int _index;

    public GraphDumper(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _directory = directory;
        Directory.CreateDirectory(directory);
    }

    public void Write(string name, ModelGraph graph)
    {
        var stem = Path.Combine(_directory, $"{_index++:D2}_{name}");
        Replace(stem + ".txt", GraphPrinter.Print(graph));
        Replace(stem + ".json", GraphSerializer.ToJson(graph));
    }

    // A file of an earlier dump is replaced, never written through: were it a link, writing would
    // change the file it points to. CreateNew (O_EXCL) also refuses a link put there after the delete.
    private static void Replace(string path, string text)
    {
        File.Delete(path);
        using var writer = new StreamWriter(new FileStream(path, FileMode.CreateNew, FileAccess.Write));
        writer.Write(text);
    }
}
