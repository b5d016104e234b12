using System.Collections;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Chat.Jinja;

/// <summary>
/// Template values are plain .NET objects with Python's meaning: null is None, then bool, long (int),
/// double (float), string, List&lt;object?&gt; (list), object?[] (tuple), OrderedDictionary&lt;string, object?&gt;
/// (dict, keys in insertion order), and <see cref="Undefined"/>, <see cref="Namespace"/>,
/// <see cref="LoopContext"/>, <see cref="TemplateFunction"/>. This class holds what Python defines for
/// them (truth, equality, ordering, iteration, membership, length, type names) and the conversion of the
/// .NET and JSON values a render is given.
/// </summary>
internal static class Values
{
    public static bool IsTrue(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long n => n != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IList<object?> items => items.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>Python's type name, for error messages.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        object?[] => "tuple",
        IList<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        LoopContext => "LoopContext",
        TemplateFunction => "function",
        _ => value.GetType().Name,
    };

    /// <summary>int or float, with a bool counting as the int 0 or 1, as in Python.</summary>
    public static bool IsNumber(object? value) => value is long or double or bool;

    public static bool IsInteger(object? value) => value is long or bool;

    public static long ToLong(object? value) => value switch
    {
        long n => n,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"expected an integer, got {TypeName(value)}"),
    };

    public static double ToDouble(object? value) => value switch
    {
        double d => d,
        long n => n,
        bool b => b ? 1 : 0,
        _ => throw new JinjaError($"expected a number, got {TypeName(value)}"),
    };

    /// <summary>Python's ==: numbers by value (1 == 1.0 == True), sequences and dicts by their items.</summary>
    public static bool AreEqual(object? a, object? b)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        if (IsNumber(a) && IsNumber(b))
            return IsInteger(a) && IsInteger(b) ? ToLong(a) == ToLong(b) : ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (null, null) => true,
            (Undefined, Undefined) => true,
            (string x, string y) => x == y,
            (object?[] x, object?[] y) => SequenceEqual(x, y),
            (List<object?> x, List<object?> y) => SequenceEqual(x, y),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(e => y.TryGetValue(e.Key, out var other) && AreEqual(e.Value, other)),
            _ => ReferenceEquals(a, b),
        };
    }

    private static bool SequenceEqual(IList<object?> x, IList<object?> y) =>
        x.Count == y.Count && x.Zip(y).All(pair => AreEqual(pair.First, pair.Second));

    /// <summary>Python's ordering (&lt; and the sorts): numbers, strings by code point, sequences item by item.</summary>
    public static int Compare(object? a, object? b)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        if (a is Undefined ua) throw ua.Error();
        if (b is Undefined ub) throw ub.Error();
        if (IsNumber(a) && IsNumber(b))
            return IsInteger(a) && IsInteger(b) ? ToLong(a).CompareTo(ToLong(b)) : ToDouble(a).CompareTo(ToDouble(b));
        switch (a, b)
        {
            case (string x, string y):
                return string.CompareOrdinal(x, y);
            case (object?[] x, object?[] y):
                return CompareSequences(x, y);
            case (List<object?> x, List<object?> y):
                return CompareSequences(x, y);
        }
        throw new JinjaError($"'<' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static int CompareSequences(IList<object?> x, IList<object?> y)
    {
        for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
        {
            if (!AreEqual(x[i], y[i])) return Compare(x[i], y[i]);
        }
        return x.Count.CompareTo(y.Count);
    }

    /// <summary>What a for loop visits: a sequence's items, a dict's keys, a string's characters; undefined is empty.</summary>
    public static IReadOnlyList<object?> Iterate(object? value) => value switch
    {
        Undefined => [],
        string s => StringFunctions.Characters(s),
        IList<object?> items => items.ToList(),
        OrderedDictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        _ => throw new JinjaError($"'{TypeName(value)}' object is not iterable"),
    };

    /// <summary>Python's "item in container".</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        Undefined => false,
        string s => item is string part
            ? s.Contains(part, StringComparison.Ordinal)
            : throw new JinjaError($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        IList<object?> items => items.Any(x => AreEqual(x, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        _ => throw new JinjaError($"argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>Python's len().</summary>
    public static long Length(object? value) => value switch
    {
        Undefined => 0,
        string s => StringFunctions.Length(s),
        IList<object?> items => items.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        _ => throw new JinjaError($"object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>
    /// A value given to a render as a template value: strings, booleans, numbers, null, JSON
    /// (<see cref="JsonNode"/>), dictionaries with string keys and other
    /// sequences, converted all the way down.
    /// </summary>
    public static object? FromClr(object? value) => value switch
    {
        null or string or bool or long or double => value,
        int or short or byte or uint or ushort or sbyte => Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
        float f => (double)f,
        decimal m => (double)m,
        JsonNode node => FromJson(node),
        IDictionary<string, object?> dict => ToDict(dict),
        IReadOnlyDictionary<string, object?> dict => ToDict(dict),
        IDictionary<string, string> dict => ToDict(dict.Select(e => KeyValuePair.Create(e.Key, (object?)e.Value))),
        IEnumerable items => items.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new ArgumentException($"a template cannot use a value of type {value.GetType().Name}", nameof(value)),
    };

    private static OrderedDictionary<string, object?> ToDict(IEnumerable<KeyValuePair<string, object?>> entries)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, item) in entries) dict[key] = FromClr(item);
        return dict;
    }

    // JSON numbers written without a fraction or exponent are ints, the others floats (as json.loads reads them).
    private static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject obj => ToDict(obj.Select(e => KeyValuePair.Create(e.Key, (object?)e.Value))),
        JsonArray array => array.Select(FromJson).ToList(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.TryGetValue<long>(out var n) ? n : (object)v.GetValue<double>(),
            _ => null,
        },
        _ => throw new ArgumentException($"unexpected JSON node {node.GetType().Name}"),
    };
}
