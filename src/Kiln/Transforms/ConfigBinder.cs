using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace Kiln.Transforms;

/// <summary>
/// Turns the text settings of a pipeline file (snake_case keys, scalar values) into a transform's
/// typed config record (a snapshot point's is the plain <see cref="TransformConfig"/>: enabled only), and
/// back into a canonical text form. Unknown keys and unparsable values are errors naming the entry and key.
/// </summary>
public static class ConfigBinder
{
    public static TransformConfig Bind(ITransform transform, IReadOnlyDictionary<string, string> settings, string source) =>
        Bind(transform.Name, transform.ConfigType, transform.DefaultConfig, settings, source);

    /// <summary>Sets <paramref name="settings"/> of the entry <paramref name="name"/> on a copy of <paramref name="defaults"/>, a <paramref name="configType"/>.</summary>
    public static TransformConfig Bind(string name, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type configType,
        TransformConfig defaults, IReadOnlyDictionary<string, string> settings, string source)
    {
        var config = defaults;
        var properties = Properties(configType);
        foreach (var (key, text) in settings)
        {
            if (!properties.TryGetValue(key, out var property))
            {
                throw new KilnException($"{source}: {name}.{key}: unknown setting " +
                    $"(settings of {name}: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))})");
            }
            var value = Parse(text, property.PropertyType) ??
                throw new KilnException($"{source}: {name}.{key}: '{text}' is not a valid {TypeName(property.PropertyType)}");
            // Configs are records: set the init-only property on a fresh copy.
            config = config with { };
            property.SetValue(config, value);
        }
        return config;
    }

    /// <summary>"name(key=value, ...)" with every setting, sorted by key: the config's identity.</summary>
    public static string Describe(ITransform transform, TransformConfig config)
    {
        var settings = Properties(transform.ConfigType)
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{p.Key}={Format(p.Value.GetValue(config))}");
        return $"{transform.Name}({string.Join(", ", settings)})";
    }

    private static Dictionary<string, PropertyInfo> Properties([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.Name != "EqualityContract")
            .ToDictionary(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), StringComparer.Ordinal);

    private static object? Parse(string text, Type type)
    {
        var inv = CultureInfo.InvariantCulture;
        if (type == typeof(bool)) return bool.TryParse(text, out var b) ? b : null;
        if (type == typeof(int)) return int.TryParse(text, NumberStyles.Integer, inv, out var i) ? i : null;
        if (type == typeof(long)) return long.TryParse(text, NumberStyles.Integer, inv, out var l) ? l : null;
        if (type == typeof(double)) return double.TryParse(text, NumberStyles.Float, inv, out var d) ? d : null;
        if (type == typeof(string)) return text;
        throw new InvalidOperationException($"config property type {type.Name} is not supported");
    }

    private static string Format(object? value) => value switch
    {
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "null",
    };

    private static string TypeName(Type type) =>
        type == typeof(bool) ? "boolean (true or false)" : type == typeof(string) ? "string" : "number";
}
