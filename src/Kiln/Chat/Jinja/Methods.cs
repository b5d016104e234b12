namespace Kiln.Chat.Jinja;

/// <summary>
/// The Python methods templates call on strings (s.strip(), s.startswith('x'), s.split('\n')) and dicts
/// (d.get('k'), d.items()). The sandbox transformers renders in lets no template change a list or dict, so
/// none of their mutating methods exist here.
/// </summary>
internal static class Methods
{
    public static bool TryBind(object? target, string name, out TemplateFunction? method)
    {
        Func<Args, object?>? body = target switch
        {
            string s => StringMethod(s, name),
            OrderedDictionary<string, object?> dict => DictMethod(dict, name),
            _ => null,
        };
        method = body is null ? null : new TemplateFunction($"{Values.TypeName(target)}.{name}", body);
        return method is not null;
    }

    private static Func<Args, object?>? StringMethod(string s, string name) => name switch
    {
        "strip" => a => StringFunctions.Strip(s, Chars(a, "strip")),
        "lstrip" => a => StringFunctions.Strip(s, Chars(a, "lstrip"), end: false),
        "rstrip" => a => StringFunctions.Strip(s, Chars(a, "rstrip"), start: false),
        "upper" => a => NoArguments(a, "upper", s.ToUpperInvariant()),
        "lower" => a => NoArguments(a, "lower", s.ToLowerInvariant()),
        "title" => a => NoArguments(a, "title", StringFunctions.PythonTitle(s)),
        "capitalize" => a => NoArguments(a, "capitalize", StringFunctions.Capitalize(s)),
        "startswith" => a => Affix(s, a, "startswith", (text, affix) => text.StartsWith(affix, StringComparison.Ordinal)),
        "endswith" => a => Affix(s, a, "endswith", (text, affix) => text.EndsWith(affix, StringComparison.Ordinal)),
        "split" => a =>
        {
            a.Allow("split", "sep", "maxsplit");
            return StringFunctions.Split(s, OptionalString(a.Get(0, "sep"), "split", "sep"), Values.ToLong(a.Get(1, "maxsplit", -1L)));
        },
        "replace" => a =>
        {
            a.Allow("replace", "old", "new", "count");
            return StringFunctions.Replace(s, RequiredString(a.Required(0, "old", "replace"), "replace", "old"),
                RequiredString(a.Required(1, "new", "replace"), "replace", "new"), Values.ToLong(a.Get(2, "count", -1L)));
        },
        "join" => a =>
        {
            a.Allow("join", "iterable");
            return string.Join(s, Values.Iterate(a.Required(0, "iterable", "join")).Select(item =>
                item as string ?? throw new JinjaError($"join(): expected str items, found {Values.TypeName(item)}")));
        },
        _ => null,
    };

    private static Func<Args, object?>? DictMethod(OrderedDictionary<string, object?> dict, string name) => name switch
    {
        "get" => a =>
        {
            a.Allow("get", "key", "default");
            return a.Required(0, "key", "get") is string key && dict.TryGetValue(key, out var value) ? value : a.Get(1, "default");
        },
        "items" => a => NoArguments(a, "items", dict.Select(e => (object?)new object?[] { e.Key, e.Value }).ToList()),
        "keys" => a => NoArguments(a, "keys", dict.Keys.Cast<object?>().ToList()),
        "values" => a => NoArguments(a, "values", dict.Values.ToList()),
        _ => null,
    };

    private static object? NoArguments(Args args, string method, object? result)
    {
        args.Allow(method);
        return result;
    }

    private static string? Chars(Args args, string method)
    {
        args.Allow(method, "chars");
        return OptionalString(args.Get(0, "chars"), method, "chars");
    }

    // startswith/endswith take a string or a tuple of strings (true if any matches).
    private static bool Affix(string s, Args args, string method, Func<string, string, bool> test)
    {
        args.Allow(method, "prefix");
        return args.Required(0, "prefix", method) switch
        {
            string affix => test(s, affix),
            IList<object?> affixes => affixes.Any(a => test(s, RequiredString(a, method, "prefix"))),
            var other => throw new JinjaError($"{method}(): expected a str or a tuple of str, not {Values.TypeName(other)}"),
        };
    }

    private static string RequiredString(object? value, string method, string parameter) =>
        value as string ?? throw new JinjaError($"{method}(): {parameter} must be a str, not {Values.TypeName(value)}");

    private static string? OptionalString(object? value, string method, string parameter) =>
        value is null ? null : RequiredString(value, method, parameter);
}
