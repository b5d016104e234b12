using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Transforms;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// Computes the chained keys of a pipeline's snapshot points, before anything runs:
/// key(point) = H(key(previous point), identity of each transform in between), where the first link
/// hashes the model identity, the checkpoint fingerprint, the code identity and the schema versions,
/// and the parallel layout joins once the prefix reaches sharding. No absolute paths, user or host
/// names enter a key, and no runtime-only setting does.
/// </summary>
public static class SnapshotKeys
{
    /// <summary>Bumped when a snapshot's files change meaning.</summary>
    public const int SnapshotSchemaVersion = 1;

    /// <summary>The component that names the parallel layout; a key without it is the same for every rank.</summary>
    public const string LayoutComponent = "layout";

    public static IReadOnlyList<SnapshotKey> ForPoints(Checkpoint checkpoint, PipelineConfig pipeline, FingerprintMode fingerprint,
        int worldSize = 1, int tensorParallel = 1)
    {
        var components = BaseComponents(checkpoint, pipeline, fingerprint);
        var hash = Digest(string.Join("\n", components.Select(c => $"{c.Name}={c.Value}")));
        var keys = new List<SnapshotKey>();
        var layoutAdded = false;
        // A transform is named by its position among the transforms: adding or removing a point changes no key.
        var transforms = 0;
        for (var i = 0; i < pipeline.Entries.Count; i++)
        {
            switch (pipeline.Entries[i])
            {
                case SnapshotPoint point:
                    if (point.Enabled) keys.Add(new SnapshotKey(i, hash, [.. components]));
                    break;
                case TransformStep step:
                    var link = new List<KeyComponent>();
                    if (!layoutAdded && step.Stage >= Stage.Sharding)
                    {
                        link.Add(new KeyComponent(LayoutComponent, $"world_size={worldSize}, tensor_parallel={tensorParallel}"));
                        layoutAdded = true;
                    }
                    link.Add(new KeyComponent($"transform.{transforms++}.{step.Name}", step.Identity));
                    components.AddRange(link);
                    hash = Digest(hash + "\n" + string.Join("\n", link.Select(c => $"{c.Name}={c.Value}")));
                    break;
            }
        }
        return keys;
    }

    private static List<KeyComponent> BaseComponents(Checkpoint checkpoint, PipelineConfig pipeline, FingerprintMode fingerprint)
    {
        // The config may be unvalidated here (kiln cache explain): read it without trusting its types.
        var architecture = checkpoint.Config["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue first && first.TryGetValue<string>(out var name) ? name
            : checkpoint.Config["model_type"] is JsonValue type && type.TryGetValue<string>(out var modelType) ? modelType : "?";
        return
        [
            new("model.architecture", architecture),
            new("model.config", Digest(Canonical(checkpoint.Config))),
            new("checkpoint.fingerprint", Fingerprint(checkpoint, fingerprint)),
            new("code.version", CodeVersion()),
            new("code.modules", string.Join(",", pipeline.Entries.OfType<TransformStep>().Select(s => s.Transform.GetType().Assembly).Append(typeof(SnapshotKeys).Assembly)
                .Distinct().Select(ModuleIdentity).Order(StringComparer.Ordinal))),
            new("schema", $"ir={GraphSerializer.SchemaVersion}, recipe={LoadRecipe.SchemaVersion}, snapshot={SnapshotSchemaVersion}"),
        ];
    }

    /// <summary>
    /// Tensor names, dtypes (or block formats), shapes, the steps their storage needs (a GGUF file's) and file sizes
    /// from the headers; in content mode, the files' bytes too.
    /// </summary>
    private static string Fingerprint(Checkpoint checkpoint, FingerprintMode mode)
    {
        var text = new StringBuilder();
        foreach (var tensor in checkpoint.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{tensor.Name} {tensor.StoredFormat} [{string.Join(",", tensor.Shape)}]");
            foreach (var step in checkpoint.StorageSteps(tensor.Name)) text.Append(" |> ").Append(step);
            text.Append('\n');
        }
        foreach (var (name, size) in checkpoint.WeightFiles.OrderBy(f => f.RelativeName, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"file {name} {size}");
            if (mode == FingerprintMode.Content)
            {
                using var stream = File.OpenRead(Path.Combine(checkpoint.Directory, name));
                text.Append(' ').Append(Convert.ToHexStringLower(SHA256.HashData(stream)));
            }
            text.Append('\n');
        }
        return (mode == FingerprintMode.Content ? "content:" : "headers:") + Digest(text.ToString());
    }

    private static string CodeVersion() =>
        typeof(SnapshotKeys).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    // The module version id changes whenever the assembly's code changes (builds are deterministic).
    private static string ModuleIdentity(Assembly assembly) => $"{assembly.GetName().Name}:{assembly.ManifestModule.ModuleVersionId:N}";

    /// <summary>config.json with keys sorted at every level and no whitespace, so formatting never changes a key.</summary>
    public static string Canonical(JsonNode? node) => node switch
    {
        JsonObject o => "{" + string.Join(",", o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => JsonSerializer.Serialize(p.Key, GraphJsonContext.Default.String) + ":" + Canonical(p.Value))) + "}",
        JsonArray a => "[" + string.Join(",", a.Select(Canonical)) + "]",
        null => "null",
        _ => node.ToJsonString(),
    };

    public static string Digest(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
