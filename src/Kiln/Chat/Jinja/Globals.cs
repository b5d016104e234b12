namespace Kiln.Chat.Jinja;

/// <summary>
/// The functions every template can call: Jinja's range, namespace and dict, and the two transformers adds,
/// raise_exception(message) and strftime_now(format).
/// </summary>
internal static class Globals
{
    // As Jinja's sandbox: a range of more items than this is refused.
    public const int MaxRange = 100_000;

    /// <summary>A scope holding the globals, the root of every render's scopes.</summary>
    public static Scope CreateScope(Func<DateTime> now)
    {
        var scope = new Scope(null);
        scope.Set("range", new TemplateFunction("range", Range));
        scope.Set("namespace", new TemplateFunction("namespace", args =>
        {
            var ns = new Namespace();
            foreach (var (key, value) in Entries("namespace", args)) ns.Attributes[key] = value;
            return ns;
        }));
        scope.Set("dict", new TemplateFunction("dict", args =>
        {
            var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in Entries("dict", args)) dict[key] = value;
            return dict;
        }));
        scope.Set("raise_exception", new TemplateFunction("raise_exception", args =>
        {
            args.Allow("raise_exception", "message");
            throw new TemplateRaisedError(ValueText.Str(args.Get(0, "message", "")));
        }));
        scope.Set("strftime_now", new TemplateFunction("strftime_now", args =>
        {
            args.Allow("strftime_now", "format");
            return args.Required(0, "format", "strftime_now") is string format
                ? Strftime.Format(now(), format)
                : throw new JinjaError("strftime_now(): the format must be a string");
        }));
        return scope;
    }

    // range(stop) or range(start, stop[, step]), as a list.
    private static object? Range(Args args)
    {
        if (args.Keywords.Count > 0) throw new JinjaError("range() takes no keyword arguments");
        var numbers = args.Positional.Select(a => a is Undefined u ? throw u.Error() : Values.IsInteger(a)
            ? Values.ToLong(a) : throw new JinjaError($"range(): expected integers, got {Values.TypeName(a)}")).ToArray();
        var (start, stop, step) = numbers.Length switch
        {
            1 => (0, numbers[0], 1),
            2 => (numbers[0], numbers[1], 1),
            3 => (numbers[0], numbers[1], numbers[2]),
            _ => throw new JinjaError($"range() takes 1 to 3 arguments ({numbers.Length} given)"),
        };
        if (step == 0) throw new JinjaError("range() step must not be zero");
        // Int128: stop - start of two longs can overflow a long.
        var span = (Int128)stop - start;
        var count = step > 0 ? (span + step - 1) / step : (-span - step - 1) / -step;
        if (count > MaxRange) throw new JinjaError($"range() of {count} items is more than the limit of {MaxRange}");
        var result = new List<object?>();
        for (var i = 0L; i < count; i++) result.Add(start + i * step);
        return result;
    }

    // namespace() and dict() take a dict (or a list of pairs) and keyword arguments.
    private static IEnumerable<(string, object?)> Entries(string function, Args args)
    {
        if (args.Positional.Count > 1) throw new JinjaError($"{function}() takes at most 1 positional argument ({args.Positional.Count} given)");
        if (args.Positional.Count == 1)
        {
            switch (args.Positional[0])
            {
                case OrderedDictionary<string, object?> dict:
                    foreach (var (key, value) in dict) yield return (key, value);
                    break;
                case IList<object?> pairs:
                    foreach (var pair in pairs)
                    {
                        if (pair is not IList<object?> { Count: 2 } kv || kv[0] is not string key)
                            throw new JinjaError($"{function}(): expected (str, value) pairs");
                        yield return (key, kv[1]);
                    }
                    break;
                default:
                    throw new JinjaError($"{function}(): expected a dict, got {Values.TypeName(args.Positional[0])}");
            }
        }
        foreach (var (key, value) in args.Keywords) yield return (key, value);
    }
}
