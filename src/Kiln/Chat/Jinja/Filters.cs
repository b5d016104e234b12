using System.Globalization;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// The filters (value | name(arguments)) chat templates use, with Jinja's meaning, and tojson as
/// transformers defines it. A name not here is refused when the template is parsed, as Jinja does.
/// </summary>
internal static class Filters
{
    private static readonly Dictionary<string, Func<object?, Args, object?>> Table = new(StringComparer.Ordinal)
    {
        ["abs"] = (v, a) => NoArguments(a, "abs", v switch
        {
            double d => Math.Abs(d),
            _ when Values.IsInteger(v) => (object)checked(Math.Abs(Values.ToLong(v))),
            Undefined u => throw u.Error(),
            _ => throw new JinjaError($"bad operand type for abs(): '{Values.TypeName(v)}'"),
        }),
        ["capitalize"] = (v, a) => Text(v, a, "capitalize", StringFunctions.Capitalize),
        ["count"] = (v, a) => NoArguments(a, "count", Values.Length(v)),
        ["default"] = Default,
        ["d"] = Default,
        ["dictsort"] = DictSort,
        ["first"] = (v, a) => NoArguments(a, "first", Values.Iterate(v) is { Count: > 0 } items ? items[0] : new Undefined("no first item, the sequence was empty")),
        ["float"] = ToFloat,
        ["indent"] = Indent,
        ["int"] = ToInt,
        ["items"] = (v, a) => NoArguments(a, "items", v switch
        {
            Undefined => new List<object?>(),
            OrderedDictionary<string, object?> dict => dict.Select(e => (object?)new object?[] { e.Key, e.Value }).ToList(),
            _ => throw new JinjaError($"items: expected a mapping, got {Values.TypeName(v)}"),
        }),
        ["join"] = Join,
        ["last"] = (v, a) => NoArguments(a, "last", Values.Iterate(v) is { Count: > 0 } items ? items[^1] : new Undefined("no last item, the sequence was empty")),
        ["length"] = (v, a) => NoArguments(a, "length", Values.Length(v)),
        ["list"] = (v, a) => NoArguments(a, "list", Values.Iterate(v).ToList()),
        ["lower"] = (v, a) => Text(v, a, "lower", s => s.ToLowerInvariant()),
        ["map"] = Map,
        ["reject"] = (v, a) => Select(v, a, "reject", byAttribute: false, keep: false),
        ["rejectattr"] = (v, a) => Select(v, a, "rejectattr", byAttribute: true, keep: false),
        ["replace"] = (v, a) =>
        {
            a.Allow("replace", "old", "new", "count");
            return StringFunctions.Replace(ValueText.Str(v), ValueText.Str(a.Required(0, "old", "replace")),
                ValueText.Str(a.Required(1, "new", "replace")), a.Get(2, "count") is { } count ? Values.ToLong(count) : -1);
        },
        ["reverse"] = (v, a) => NoArguments(a, "reverse", v is string s
            ? string.Concat(StringFunctions.Characters(s).Cast<string>().Reverse())
            : Values.Iterate(v).Reverse().ToList()),
        ["safe"] = (v, a) => NoArguments(a, "safe", v),
        ["select"] = (v, a) => Select(v, a, "select", byAttribute: false, keep: true),
        ["selectattr"] = (v, a) => Select(v, a, "selectattr", byAttribute: true, keep: true),
        ["sort"] = Sort,
        ["string"] = (v, a) => NoArguments(a, "string", ValueText.Str(v)),
        ["title"] = (v, a) => Text(v, a, "title", StringFunctions.JinjaTitle),
        ["tojson"] = JsonText.Filter,
        ["trim"] = (v, a) =>
        {
            a.Allow("trim", "chars");
            return StringFunctions.Strip(ValueText.Str(v), a.Get(0, "chars") is { } chars ? ValueText.Str(chars) : null);
        },
        ["unique"] = Unique,
        ["upper"] = (v, a) => Text(v, a, "upper", s => s.ToUpperInvariant()),
    };

    public static bool Exists(string name) => Table.ContainsKey(name);

    public static object? Apply(string name, object? value, Args args) =>
        Table.TryGetValue(name, out var filter) ? filter(value, args) : throw new JinjaError($"no filter named '{name}'");

    private static object? NoArguments(Args args, string filter, object? result)
    {
        args.Allow(filter);
        return result;
    }

    private static string Text(object? value, Args args, string filter, Func<string, string> transform)
    {
        args.Allow(filter);
        return transform(ValueText.Str(value));
    }

    // default(default_value='', boolean=False): the fallback for an undefined value (or, with boolean, a false one).
    private static object? Default(object? value, Args args)
    {
        args.Allow("default", "default_value", "boolean");
        var replace = value is Undefined || (Values.IsTrue(args.Get(1, "boolean", false)) && !Values.IsTrue(value));
        return replace ? args.Get(0, "default_value", "") : value;
    }

    // dictsort(case_sensitive=False, by='key', reverse=False): the (key, value) pairs sorted.
    private static object? DictSort(object? value, Args args)
    {
        args.Allow("dictsort", "case_sensitive", "by", "reverse");
        if (value is not OrderedDictionary<string, object?> dict) throw new JinjaError($"dictsort: expected a mapping, got {Values.TypeName(value)}");
        var byValue = args.Get(1, "by", "key") switch
        {
            "key" => false,
            "value" => true,
            _ => throw new JinjaError("dictsort: by must be 'key' or 'value'"),
        };
        var caseSensitive = Values.IsTrue(args.Get(0, "case_sensitive", false));
        var pairs = dict.Select(e => (object?)new object?[] { e.Key, e.Value });
        return Sorted(pairs, p => SortKey(((object?[])p!)[byValue ? 1 : 0], caseSensitive), Values.IsTrue(args.Get(2, "reverse", false)));
    }

    // int(default=0, base=10): a number truncated, or a string read as an integer (or a float); the default when neither.
    private static object? ToInt(object? value, Args args)
    {
        args.Allow("int", "default", "base");
        var fallback = args.Get(0, "default", 0L);
        var numberBase = (int)Values.ToLong(args.Get(1, "base", 10L));
        switch (value)
        {
            case Undefined u: throw u.Error();
            case bool or long: return Values.ToLong(value);
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                var text = s.Trim().Replace("_", "");
                if (numberBase == 10 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)) return n;
                if (numberBase is 2 or 8 or 16 && TryParseBase(text, numberBase, out n)) return n;
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && double.IsFinite(f) ? (long)Math.Truncate(f) : fallback;
            default: return fallback;
        }
    }

    private static bool TryParseBase(string text, int numberBase, out long value)
    {
        value = 0;
        var negative = text.StartsWith('-');
        var digits = text.TrimStart('+', '-');
        var prefix = numberBase switch { 2 => "0b", 8 => "0o", _ => "0x" };
        if (digits.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) digits = digits[2..];
        try
        {
            value = Convert.ToInt64(digits, numberBase) * (negative ? -1 : 1);
            return digits.Length > 0;
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            return false;
        }
    }

    // float(default=0.0): a number, or a string read as one; the default otherwise.
    private static object? ToFloat(object? value, Args args)
    {
        args.Allow("float", "default");
        var fallback = args.Get(0, "default", 0.0);
        return value switch
        {
            Undefined u => throw u.Error(),
            bool or long or double => Values.ToDouble(value),
            string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            _ => fallback,
        };
    }

    // indent(width=4, first=False, blank=False): indents every line but the first (and blank lines only with blank=True).
    private static object? Indent(object? value, Args args)
    {
        args.Allow("indent", "width", "first", "blank");
        var indentation = args.Get(0, "width", 4L) switch
        {
            string s => s,
            var n => new string(' ', (int)Math.Clamp(Values.ToLong(n), 0, 1000)),
        };
        var lines = ValueText.Str(value).Split('\n');
        var result = new StringBuilder(lines[0]);
        var blank = Values.IsTrue(args.Get(2, "blank", false));
        foreach (var line in lines.Skip(1))
            result.Append('\n').Append(line.Length > 0 || blank ? indentation : "").Append(line);
        if (Values.IsTrue(args.Get(1, "first", false))) result.Insert(0, indentation);
        return result.ToString();
    }

    // join(d='', attribute=None)
    private static object? Join(object? value, Args args)
    {
        args.Allow("join", "d", "attribute");
        var items = Values.Iterate(value).AsEnumerable();
        if (args.Get(1, "attribute") is { } attribute) items = items.Select(AttributeGetter(attribute));
        return string.Join(ValueText.Str(args.Get(0, "d", "")), items.Select(ValueText.Str));
    }

    // map(attribute='name', default=...) or map('filter', filter arguments...).
    private static object? Map(object? value, Args args)
    {
        var items = Values.Iterate(value);
        if (args.Positional.Count == 0 && args.Keywords.ContainsKey("attribute"))
        {
            args.Allow("map", "attribute", "default");
            var getter = AttributeGetter(args.Get(0, "attribute"));
            var hasDefault = args.Has(1, "default");
            return items.Select(item => getter(item) is Undefined && hasDefault ? args.Get(1, "default") : getter(item)).ToList();
        }
        if (args.Positional.Count == 0 || args.Positional[0] is not string filter)
            throw new JinjaError("map: expected a filter name or attribute=");
        if (!Exists(filter)) throw new JinjaError($"no filter named {ValueText.Repr(filter)}");
        var filterArgs = args.From(1);
        return items.Select(item => Apply(filter, item, filterArgs)).ToList();
    }

    // select/reject(test, test arguments...) and selectattr/rejectattr(attribute, test, test arguments...):
    // the items for which the test (or, without one, the value's truth) is keep.
    private static object? Select(object? value, Args args, string filter, bool byAttribute, bool keep)
    {
        var first = byAttribute ? 1 : 0;
        if (byAttribute && args.Positional.Count == 0) throw new JinjaError($"{filter}() missing required argument 'attribute'");
        if (args.Keywords.Count > 0 && args.Positional.Count <= first) throw new JinjaError($"{filter}() got an unexpected keyword argument");
        var getter = byAttribute ? AttributeGetter(args.Positional[0]) : item => item;
        Func<object?, bool> test = args.Positional.Count > first
            ? TestFor(args.Positional[first], args.From(first + 1), filter)
            : Values.IsTrue;
        return Values.Iterate(value).Where(item => test(getter(item)) == keep).ToList();
    }

    private static Func<object?, bool> TestFor(object? name, Args testArgs, string filter)
    {
        if (name is not string test) throw new JinjaError($"{filter}(): the test name must be a string");
        if (!TestFunctions.Exists(test)) throw new JinjaError($"no test named {ValueText.Repr(test)}");
        return item => TestFunctions.Apply(test, item, testArgs);
    }

    // sort(reverse=False, case_sensitive=False, attribute=None): stable; strings compare without case by default.
    private static object? Sort(object? value, Args args)
    {
        args.Allow("sort", "reverse", "case_sensitive", "attribute");
        var caseSensitive = Values.IsTrue(args.Get(1, "case_sensitive", false));
        var getter = args.Get(2, "attribute") is { } attribute ? AttributeGetter(attribute) : item => item;
        return Sorted(Values.Iterate(value), item => SortKey(getter(item), caseSensitive), Values.IsTrue(args.Get(0, "reverse", false)));
    }

    // unique(case_sensitive=False, attribute=None): the first of each distinct item, in order.
    private static object? Unique(object? value, Args args)
    {
        args.Allow("unique", "case_sensitive", "attribute");
        var caseSensitive = Values.IsTrue(args.Get(0, "case_sensitive", false));
        var getter = args.Get(1, "attribute") is { } attribute ? AttributeGetter(attribute) : item => item;
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in Values.Iterate(value))
        {
            var key = SortKey(getter(item), caseSensitive);
            if (seen.Any(s => Values.AreEqual(s, key))) continue;
            seen.Add(key);
            result.Add(item);
        }
        return result;
    }

    private static List<object?> Sorted(IEnumerable<object?> items, Func<object?, object?> key, bool descending)
    {
        var keyed = items.Select(item => (Item: item, Key: key(item))).ToList();
        var comparer = Comparer<object?>.Create(Values.Compare);
        var ordered = descending ? keyed.OrderByDescending(p => p.Key, comparer) : keyed.OrderBy(p => p.Key, comparer);
        try
        {
            return ordered.Select(p => p.Item).ToList();
        }
        catch (InvalidOperationException e) when (e.InnerException is JinjaError unordered)
        {
            // The sort wraps what the comparison threw (items that do not order, such as 1 and 'a').
            throw unordered;
        }
    }

    private static object? SortKey(object? value, bool caseSensitive) =>
        !caseSensitive && value is string s ? s.ToLowerInvariant() : value;

    // Jinja's attribute getter: "a.b" looks up a then b; a part that is a number is an index.
    private static Func<object?, object?> AttributeGetter(object? attribute)
    {
        var parts = ValueText.Str(attribute).Split('.');
        return item =>
        {
            foreach (var part in parts)
                item = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? Access.Item(item, index) : Access.Item(item, part);
            return item;
        };
    }
}
