using System.Text.Json.Nodes;
using Kiln.Models;

namespace Kiln.Checkpoints;

/// <summary>
/// The config.json of a test checkpoint, written by its family's own description: the family reads its
/// config through <see cref="ConfigReader.ForTestModel"/>, and each field is written with the value its
/// read declares (<see cref="TestValue"/>) just before it is read back. So the file holds the fields the
/// family reads and is checked by the rules that check every config.json; a field written from an option
/// is named after the option in errors.
/// </summary>
public sealed class TestModelConfig
{
    private readonly Dictionary<string, string> _optionByField = new(StringComparer.Ordinal);
    private readonly HashSet<string> _writtenOptions = new(StringComparer.Ordinal);
    private readonly TestModelOptions _options;

    private TestModelConfig(TestModelOptions options) => _options = options;

    /// <summary>The fields written so far (all of them once the family has read its config).</summary>
    public JsonObject Json { get; } = new();

    /// <summary>
    /// Writes the config for <paramref name="options"/> and reads it as its family does: the config, and
    /// the model it describes (whose weights the checkpoint holds). Throws <see cref="KilnException"/>
    /// naming the option at fault.
    /// </summary>
    public static (JsonObject Config, ModelDefinition Model) Describe(TestModelOptions options)
    {
        options.Validate();
        var family = FamilyRegistry.Named(options.Family)!;
        var test = new TestModelConfig(options);
        var model = family.Read(ConfigReader.ForTestModel(test));
        // An option the description never wrote is one this model type has no field for.
        if (TestOption.All.FirstOrDefault(v => v.IsSet(options) && !test._writtenOptions.Contains(v.Option!(options))) is { } ignored)
            throw new KilnException($"{ignored.Option!(options)}: model type {options.ModelType} has no such setting");
        return (test.Json, model);
    }

    /// <summary>Writes <paramref name="field"/> of <paramref name="target"/> (the config or an object in it) unless it is there already.</summary>
    internal void Write(JsonObject target, string field, string path, TestValue value)
    {
        if (target.ContainsKey(field)) return;
        if (value.Option is { } option)
        {
            var name = option(_options);
            _optionByField[path] = name;
            _writtenOptions.Add(name);
        }
        if (value.IsWritten(_options)) target[field] = value.Value(_options);
    }

    /// <summary>The option a field (or, for "rope_scaling.factor", the field holding it) was written from; null for a fixed value.</summary>
    internal string? OptionOf(string path)
    {
        while (true)
        {
            if (_optionByField.TryGetValue(path, out var option)) return option;
            var dot = path.LastIndexOf('.');
            if (dot < 0) return null;
            path = path[..dot];
        }
    }
}
