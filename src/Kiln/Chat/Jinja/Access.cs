namespace Kiln.Chat.Jinja;

/// <summary>
/// Jinja's two lookups. x.name tries the attribute first (a method such as 'a'.strip or d.items, a
/// namespace's or loop's attribute), then the item x['name']; x[key] tries the item first, then, for a
/// string key, the attribute. What neither finds is undefined, with Jinja's message for when it is used
/// (names quoted as Python's repr does, so that a key holding a line break still makes a one-line error).
/// </summary>
internal static class Access
{
    public static object? Attribute(object? target, string name)
    {
        if (target is Undefined undefined) throw undefined.Error();
        if (TryAttribute(target, name, out var value) || TryItem(target, name, out value)) return value;
        return new Undefined($"{ObjectName(target, quoted: true)} has no attribute {ValueText.Repr(name)}");
    }

    public static object? Item(object? target, object? key)
    {
        if (target is Undefined undefined) throw undefined.Error();
        if (TryItem(target, key, out var value) || (key is string name && TryAttribute(target, name, out value))) return value;
        return key is string text
            ? new Undefined($"{ObjectName(target, quoted: true)} has no attribute {ValueText.Repr(text)}")
            : new Undefined($"{ObjectName(target, quoted: false)} has no element {ValueText.Repr(key)}");
    }

    /// <summary>target[start:stop:step] of a string, list or tuple, with Python's rules for omitted and negative bounds.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        if (target is Undefined undefined) throw undefined.Error();
        var items = target switch
        {
            string s => StringFunctions.Characters(s),
            IList<object?> list => list,
            _ => throw new JinjaError($"'{Values.TypeName(target)}' object is not subscriptable"),
        };
        var picked = SliceIndices(items.Count, Bound(start), Bound(stop), Bound(step) ?? 1).Select(i => items[i]);
        return target switch
        {
            string => string.Concat(picked.Cast<string>()),
            object?[] => picked.ToArray(),
            _ => picked.ToList(),
        };
    }

    private static long? Bound(object? value) => value switch
    {
        null => null,
        _ when Values.IsInteger(value) => Values.ToLong(value),
        Undefined u => throw u.Error(),
        _ => throw new JinjaError("slice indices must be integers or None"),
    };

    // Python's slice.indices: the positions a slice visits in a sequence of this length.
    private static IEnumerable<int> SliceIndices(int length, long? start, long? stop, long step)
    {
        if (step == 0) throw new JinjaError("slice step cannot be zero");
        long Clamp(long? bound, long missing, long low, long high)
        {
            if (bound is not { } b) return missing;
            if (b < 0) b += length;
            return Math.Clamp(b, low, high);
        }
        if (step > 0)
        {
            var from = Clamp(start, 0, 0, length);
            var to = Clamp(stop, length, 0, length);
            for (var i = from; i < to; i += step) yield return (int)i;
        }
        else
        {
            var from = Clamp(start, length - 1, -1, length - 1);
            var to = Clamp(stop, -1, -1, length - 1);
            for (var i = from; i > to; i += step) yield return (int)i;
        }
    }

    private static bool TryAttribute(object? target, string name, out object? value)
    {
        switch (target)
        {
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out value);
            case LoopContext loop:
                value = loop.Get(name);
                return value is not Undefined;
        }
        var found = Methods.TryBind(target, name, out var method);
        value = method;
        return found;
    }

    private static bool TryItem(object? target, object? key, out object? value)
    {
        value = null;
        switch (target)
        {
            case OrderedDictionary<string, object?> dict when key is string name:
                return dict.TryGetValue(name, out value);
            case IList<object?> list when Values.IsInteger(key):
                return TryIndex(list, Values.ToLong(key), out value);
            case string s when Values.IsInteger(key):
                return TryIndex(StringFunctions.Characters(s), Values.ToLong(key), out value);
            default:
                return false;
        }
    }

    // A negative index counts from the end, as in Python.
    private static bool TryIndex(IList<object?> items, long index, out object? value)
    {
        if (index < 0) index += items.Count;
        var inRange = index >= 0 && index < items.Count;
        value = inRange ? items[(int)index] : null;
        return inRange;
    }

    // Jinja's object_type_repr: "'dict object' has no attribute 'x'", "list object has no element 3".
    private static string ObjectName(object? target, bool quoted)
    {
        var name = target is null ? "None" : $"{Values.TypeName(target)} object";
        return quoted ? $"'{name}'" : name;
    }
}
