using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Kiln.Transforms;

/// <summary>
/// The ordered entries of a pipeline, transform steps and snapshot points: the embedded default pipeline,
/// or a user's pipeline file in the same format, with <c>NAME.KEY=VALUE</c> overrides applied to every
/// entry of that name.
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
            PipelineEntry entry = name == SnapshotPoint.EntryName ? Point(entries, settings, where) : Step(name, settings, where, declaredStage, registry);
            if (entries.Count > 0 && entry.Stage < entries[^1].Stage)
            {
                throw new KilnException($"{where}: {name} (stage {entry.Stage.Name()}) comes after {entries[^1].Name} " +
                    $"(stage {entries[^1].Stage.Name()}); stages run in the order {string.Join(" < ", Enum.GetValues<Stage>().Select(s => s.Name()))}");
            }
            entries.Add(entry);
        }
        return new PipelineConfig(entries);
    }

    private static TransformStep Step(string name, Dictionary<string, string> settings, string where, string? declaredStage, TransformRegistry registry)
    {
        if (!registry.TryGet(name, out var transform))
        {
            var known = registry.All.Select(t => t.Name).Append(SnapshotPoint.EntryName).Order(StringComparer.Ordinal);
            throw new KilnException($"{where}: unknown transform '{name}' (known: {string.Join(", ", known)})");
        }
        if (declaredStage is not null && declaredStage != transform.Stage.Name())
            throw new KilnException($"{where}: {name}.stage: '{declaredStage}', but {name} belongs to stage {transform.Stage.Name()}");
        return new TransformStep(transform, ConfigBinder.Bind(transform, settings, where));
    }

    // A point belongs to the stage of its position and follows the last transform before it. Its one
    // setting, enabled, is bound as a transform's is; a stage written beside it documents the position only.
    private static SnapshotPoint Point(List<PipelineEntry> before, Dictionary<string, string> settings, string where)
    {
        var enabled = ConfigBinder.Bind(SnapshotPoint.EntryName, typeof(TransformConfig), new TransformConfig(), settings, where).Enabled;
        var after = before.OfType<TransformStep>().LastOrDefault()?.Name ?? "export";
        return new SnapshotPoint(before.Count > 0 ? before[^1].Stage : Stage.Factory, after, enabled);
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

    // The format: a mapping with one key, "transforms", holding a list of mappings with "name" and settings
    // (the key keeps its name, though snapshot points are listed in it too).
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
                // An optional "stage" documents the entry; a transform's must agree with its own stage.
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
                throw new KilnException($"override: '{set}' is not NAME.KEY=VALUE");
            var (name, key, value) = (set[..dot], set[(dot + 1)..equals], set[(equals + 1)..]);
            var targets = entries.Where(e => e.Name == name).ToList();
            if (targets.Count == 0)
            {
                var problem = name == SnapshotPoint.EntryName ? "the pipeline has no snapshot point"
                    : registry.TryGet(name, out _) ? "the transform is not in the pipeline" : "unknown transform";
                throw new KilnException($"override: {name}: {problem}");
            }
            foreach (var target in targets) target.Settings[key] = value;
        }
    }
}
