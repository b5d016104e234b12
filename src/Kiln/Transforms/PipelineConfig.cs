using System.Reflection;
using Kiln.Transforms.Cache;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Kiln.Transforms;

/// <summary>One step of a pipeline: a transform, its bound config and the stage it runs in.</summary>
public sealed record PipelineEntry(ITransform Transform, TransformConfig Config, Stage Stage)
{
    public string Name => Transform.Name;

    /// <summary>A snapshot point of the pipeline cache (enabled or not).</summary>
    public bool IsSnapshotPoint => Transform is PipelineCacheTransform;

    /// <summary>The transform's name and every setting: what the snapshot cache hashes.</summary>
    public string Identity => ConfigBinder.Describe(Transform, Config);
}

/// <summary>
/// The ordered list of transforms to run: the embedded default pipeline, or a user's pipeline file in
/// the same format, with <c>--set NAME.KEY=VALUE</c> overrides applied to every entry of that name.
/// </summary>
public sealed class PipelineConfig(IReadOnlyList<PipelineEntry> entries)
{
    public const string DefaultSource = "default-pipeline.yaml";

    public IReadOnlyList<PipelineEntry> Entries { get; } = entries;

    public static PipelineConfig Load(string? pipelineFile = null, IReadOnlyList<string>? sets = null, TransformRegistry? registry = null)
    {
        registry ??= TransformRegistry.Default;
        var (source, yaml) = pipelineFile is null ? (DefaultSource, DefaultYaml()) : (pipelineFile, ReadFile(pipelineFile));
        var raw = Parse(yaml, source);
        ApplySets(raw, sets ?? [], registry);

        var entries = new List<PipelineEntry>();
        foreach (var (name, settings, where, declaredStage) in raw)
        {
            if (!registry.TryGet(name, out var transform))
                throw new KilnException($"{where}: unknown transform '{name}' (known: {string.Join(", ", registry.All.Select(t => t.Name).Order(StringComparer.Ordinal))})");
            if (declaredStage is not null && transform is not PipelineCacheTransform && declaredStage != transform.Stage.Name())
                throw new KilnException($"{where}: {name}.stage: '{declaredStage}', but {name} belongs to stage {transform.Stage.Name()}");
            // A snapshot point belongs to the stage of its position.
            var stage = transform is PipelineCacheTransform ? entries.Count > 0 ? entries[^1].Stage : Stage.Factory : transform.Stage;
            var entry = new PipelineEntry(transform, ConfigBinder.Bind(transform, settings, where), stage);
            if (entries.Count > 0 && entry.Stage < entries[^1].Stage)
            {
                throw new KilnException($"{where}: {name} (stage {entry.Stage.Name()}) comes after {entries[^1].Name} " +
                    $"(stage {entries[^1].Stage.Name()}); stages run in the order {string.Join(" < ", Enum.GetValues<Stage>().Select(s => s.Name()))}");
            }
            entries.Add(entry);
        }
        return new PipelineConfig(entries);
    }

    private static string DefaultYaml()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Kiln.Transforms.default-pipeline.yaml")
            ?? throw new InvalidOperationException("the default pipeline is not embedded");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>A pipeline file is a few lines; anything past this is not one (and /dev/zero never ends).</summary>
    public const int MaxFileBytes = 1 << 20;

    private static string ReadFile(string path)
    {
        if (path.Length == 0) throw new KilnException("pipeline file: the path is empty");
        try
        {
            // A regular file only: a FIFO would wait for a writer forever, a device could be endless.
            using var stream = RegularFile.OpenRead(path);
            if (stream.Length > MaxFileBytes) throw new KilnException($"{path}: {stream.Length} bytes, more than the {MaxFileBytes} a pipeline file may have");
            return new StreamReader(stream).ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KilnException($"{path}: cannot read the pipeline file: {e.Message}", e);
        }
    }

    private sealed record RawEntry(string Name, Dictionary<string, string> Settings, string Where, string? DeclaredStage);

    // The format: a mapping with one key, "transforms", holding a list of mappings with "name" and settings.
    private static List<RawEntry> Parse(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new KilnException($"{source}: line {e.Start.Line}: malformed YAML: {e.Message}", e);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new KilnException($"{source}: expected a mapping with the key 'transforms'");
        var entries = new List<RawEntry>();
        foreach (var (key, value) in root.Children)
        {
            if (key.ToString() != "transforms") throw new KilnException($"{source}: {key}: unknown key (expected 'transforms')");
            if (value is not YamlSequenceNode list) throw new KilnException($"{source}: transforms: expected a list");
            foreach (var item in list)
            {
                var where = $"{source}: line {item.Start.Line}";
                if (item is not YamlMappingNode mapping) throw new KilnException($"{where}: expected a mapping with 'name'");
                var settings = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (k, v) in mapping.Children)
                {
                    if (v is not YamlScalarNode scalar) throw new KilnException($"{where}: {k}: expected a single value");
                    settings[k.ToString()] = scalar.Value ?? "";
                }
                if (!settings.Remove("name", out var name)) throw new KilnException($"{where}: name: missing");
                // An optional "stage" documents the entry; it must agree with the transform's own stage.
                settings.Remove("stage", out var stage);
                entries.Add(new RawEntry(name, settings, where, stage));
            }
        }
        return entries;
    }

    private static void ApplySets(List<RawEntry> entries, IReadOnlyList<string> sets, TransformRegistry registry)
    {
        foreach (var set in sets)
        {
            var equals = set.IndexOf('=');
            var dot = set.IndexOf('.');
            if (equals < 0 || dot < 0 || dot > equals)
                throw new KilnException($"--set: '{set}' is not NAME.KEY=VALUE");
            var (name, key, value) = (set[..dot], set[(dot + 1)..equals], set[(equals + 1)..]);
            var targets = entries.Where(e => e.Name == name).ToList();
            if (targets.Count == 0)
            {
                throw new KilnException(registry.TryGet(name, out _)
                    ? $"--set: {name}: the transform is not in the pipeline"
                    : $"--set: {name}: unknown transform");
            }
            foreach (var target in targets) target.Settings[key] = value;
        }
    }
}
