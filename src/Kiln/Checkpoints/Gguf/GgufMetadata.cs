namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// A GGUF file's metadata by key, with typed reads: each returns null for an absent key and refuses a
/// value of another type with an error naming the file and the key. Integers of any width are read as
/// integers, and f32 or f64 as numbers, as llama.cpp's converters write either.
/// </summary>
public sealed class GgufMetadata
{
    private readonly Dictionary<string, GgufValue> _values;

    public GgufMetadata(string file, IEnumerable<KeyValuePair<string, GgufValue>> entries)
    {
        File = file;
        _values = new Dictionary<string, GgufValue>(entries, StringComparer.Ordinal);
    }

    /// <summary>The file the errors name.</summary>
    public string File { get; }

    public bool Has(string key) => _values.ContainsKey(key);

    public GgufValue? Get(string key) => _values.GetValueOrDefault(key);

    public long? Integer(string key) => Get(key) switch
    {
        null => null,
        { IsArray: false, Value: byte or sbyte or ushort or short or uint or int or long } v => Convert.ToInt64(v.Value, System.Globalization.CultureInfo.InvariantCulture),
        { IsArray: false, Value: ulong u } => u <= long.MaxValue ? (long)u : throw Error(key, $"{u} is too large"),
        var other => throw Expected(key, "an integer", other),
    };

    public double? Number(string key) => Get(key) switch
    {
        null => null,
        { IsArray: false, Value: float f } => f,
        { IsArray: false, Value: double d } => d,
        var other => throw Expected(key, "a number (f32 or f64)", other),
    };

    public string? String(string key) => Get(key) switch
    {
        null => null,
        { IsArray: false, Value: string s } => s,
        var other => throw Expected(key, "a string", other),
    };

    public bool? Bool(string key) => Get(key) switch
    {
        null => null,
        { IsArray: false, Value: bool b } => b,
        var other => throw Expected(key, "a boolean", other),
    };

    public string[]? Strings(string key) => Get(key) switch
    {
        null => null,
        { Value: string[] strings } => strings,
        var other => throw Expected(key, "an array of strings", other),
    };

    /// <summary>An array of numbers (f32, f64 or integers, as llama.cpp accepts i32 token scores), as doubles.</summary>
    public double[]? Numbers(string key) => Get(key) switch
    {
        null => null,
        { IsArray: true, Value: Array values and not string[] and not bool[] } => [.. values.Cast<object>().Select(v => Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture))],
        var other => throw Expected(key, "an array of numbers", other),
    };

    /// <summary>An array of integers (any width), as longs.</summary>
    public long[]? Integers(string key) => Get(key) switch
    {
        null => null,
        { IsArray: true, Value: byte[] or sbyte[] or ushort[] or short[] or uint[] or int[] or long[] } v => [.. ((Array)v.Value).Cast<object>().Select(x => Convert.ToInt64(x, System.Globalization.CultureInfo.InvariantCulture))],
        var other => throw Expected(key, "an array of integers", other),
    };

    /// <summary>An error about one key: "FILE: metadata 'KEY': problem".</summary>
    public KilnException Error(string key, string problem) => KilnException.InFile(File, $"metadata '{GgufText.Show(key)}'", problem);

    private KilnException Expected(string key, string what, GgufValue value) => Error(key, $"expected {what}, found {value.TypeName}");
}
