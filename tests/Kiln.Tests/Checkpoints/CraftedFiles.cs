using System.Text;
using System.Text.Json;
using Kiln.Checkpoints;

namespace Kiln.Tests.Checkpoints;

/// <summary>Builds safetensors files and checkpoint folders for tests, including malformed ones.</summary>
public static class CraftedFiles
{
    /// <summary>A safetensors file with exactly this header text and <paramref name="dataBytes"/> bytes of data (0, 1, 2, ...).</summary>
    public static string RawSafetensors(string path, string header, int dataBytes, ulong? headerLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes(headerLength ?? (ulong)json.Length));
        stream.Write(json);
        stream.Write(Enumerable.Range(0, dataBytes).Select(i => (byte)i).ToArray());
        return path;
    }

    /// <summary>Writes a safetensors file holding the given tensors.</summary>
    public static string Safetensors(string path, params (SafetensorsEntry Entry, byte[] Data)[] tensors)
    {
        using var writer = SafetensorsWriter.Create(path, tensors.Select(t => t.Entry));
        foreach (var entry in writer.Order)
        {
            writer.WriteTensor(entry.Name, tensors.Single(t => t.Entry.Name == entry.Name).Data);
        }
        writer.Complete();
        return path;
    }

    /// <summary>A checkpoint folder (config.json "{}", one model.safetensors) in <paramref name="directory"/>.</summary>
    public static string Checkpoint(string directory, params (SafetensorsEntry Entry, byte[] Data)[] tensors)
    {
        File.WriteAllText(Path.Combine(directory, "config.json"), "{}");
        Safetensors(Path.Combine(directory, "model.safetensors"), tensors);
        return directory;
    }

    public static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    public static float[] ToFloats(ReadOnlySpan<byte> bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    public static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    /// <summary>The weight_map of a model.safetensors.index.json, read independently of the code under test.</summary>
    public static Dictionary<string, string> WeightMap(string indexPath)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        return document.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
    }
}
