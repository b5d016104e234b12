using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Cache;

namespace Kiln.Tests.Cache;

/// <summary>
/// Edits a published entry as a hostile writer would: the changed file's size and SHA-256 are written
/// into the manifest, so only the checks after the integrity check can catch the change.
/// </summary>
public static class HostileEntry
{
    public static void Rewrite(string entry, string path, string text) => Rewrite(entry, path, System.Text.Encoding.UTF8.GetBytes(text));

    public static void Rewrite(string entry, string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        var relative = Path.GetRelativePath(entry, path).Replace('\\', '/');
        EditManifest(entry, m =>
        {
            var file = m["files"]!.AsArray().Single(f => f!["path"]!.ToString() == relative)!;
            file["bytes"] = bytes.Length;
            file["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes));
        });
    }

    /// <summary>Parses rank 0's graph.json, applies <paramref name="edit"/> and rewrites it (re-checksummed).</summary>
    public static void EditGraph(string entry, Action<JsonNode> edit)
    {
        var path = GraphFile(entry);
        var document = JsonNode.Parse(File.ReadAllText(path))!;
        edit(document);
        Rewrite(entry, path, document.ToJsonString());
    }

    public static void EditManifest(string entry, Action<JsonNode> edit)
    {
        var path = Path.Combine(entry, SnapshotStore.ManifestFile);
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
    }

    public static string GraphFile(string entry) => Path.Combine(entry, "rank_0", "graph.json");

    public static string BuffersFile(string entry) => Path.Combine(entry, "rank_0", "buffers.safetensors");

    /// <summary>Makes a FIFO (named pipe) at <paramref name="path"/>.</summary>
    public static void MakeFifo(string path)
    {
        using var process = System.Diagnostics.Process.Start("mkfifo", [path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
