namespace Kiln.Chat.Jinja;

/// <summary>The tests of "value is name(arguments)", with Jinja's meaning (and Python's types: a bool is a number).</summary>
internal static class TestFunctions
{
    private static readonly Dictionary<string, Func<object?, Args, bool>> Table = new(StringComparer.Ordinal)
    {
        ["boolean"] = (v, a) => Plain(a, "boolean", v is bool),
        ["callable"] = (v, a) => Plain(a, "callable", v is TemplateFunction),
        ["defined"] = (v, a) => Plain(a, "defined", v is not Undefined),
        ["undefined"] = (v, a) => Plain(a, "undefined", v is Undefined),
        ["none"] = (v, a) => Plain(a, "none", v is null),
        ["true"] = (v, a) => Plain(a, "true", v is true),
        ["false"] = (v, a) => Plain(a, "false", v is false),
        ["integer"] = (v, a) => Plain(a, "integer", v is long),
        ["float"] = (v, a) => Plain(a, "float", v is double),
        ["number"] = (v, a) => Plain(a, "number", Values.IsNumber(v)),
        ["string"] = (v, a) => Plain(a, "string", v is string),
        ["mapping"] = (v, a) => Plain(a, "mapping", v is OrderedDictionary<string, object?>),
        // Python's iter() and len()+[] work on strings, sequences, dicts, and Jinja's Undefined.
        ["iterable"] = (v, a) => Plain(a, "iterable", v is string or IList<object?> or OrderedDictionary<string, object?> or Undefined),
        ["sequence"] = (v, a) => Plain(a, "sequence", v is string or IList<object?> or OrderedDictionary<string, object?> or Undefined),
        ["lower"] = (v, a) => Plain(a, "lower", v is string s && s.Any(char.IsLower) && !s.Any(char.IsUpper)),
        ["upper"] = (v, a) => Plain(a, "upper", v is string s && s.Any(char.IsUpper) && !s.Any(char.IsLower)),
        ["odd"] = (v, a) => Plain(a, "odd", Integer(v, "odd") % 2 != 0),
        ["even"] = (v, a) => Plain(a, "even", Integer(v, "even") % 2 == 0),
        ["divisibleby"] = (v, a) =>
        {
            a.Allow("divisibleby", "num");
            var divisor = Integer(a.Required(0, "num", "divisibleby"), "divisibleby");
            return divisor == 0 ? throw new JinjaError("divisibleby: division by zero") : Integer(v, "divisibleby") % divisor == 0;
        },
        ["eq"] = (v, a) => Against(v, a, "eq", "=="),
        ["equalto"] = (v, a) => Against(v, a, "equalto", "=="),
        ["=="] = (v, a) => Against(v, a, "==", "=="),
        ["ne"] = (v, a) => Against(v, a, "ne", "!="),
        ["!="] = (v, a) => Against(v, a, "!=", "!="),
        ["lt"] = (v, a) => Against(v, a, "lt", "<"),
        ["lessthan"] = (v, a) => Against(v, a, "lessthan", "<"),
        ["<"] = (v, a) => Against(v, a, "<", "<"),
        ["le"] = (v, a) => Against(v, a, "le", "<="),
        ["<="] = (v, a) => Against(v, a, "<=", "<="),
        ["gt"] = (v, a) => Against(v, a, "gt", ">"),
        ["greaterthan"] = (v, a) => Against(v, a, "greaterthan", ">"),
        [">"] = (v, a) => Against(v, a, ">", ">"),
        ["ge"] = (v, a) => Against(v, a, "ge", ">="),
        [">="] = (v, a) => Against(v, a, ">=", ">="),
        ["in"] = (v, a) => Against(v, a, "in", "in"),
        ["sameas"] = (v, a) =>
        {
            a.Allow("sameas", "other");
            var other = a.Required(0, "other", "sameas");
            // Python's "is": None, booleans, small ints and interned strings are one object per value.
            return v is null or bool or long or double or string ? Equals(v, other) : ReferenceEquals(v, other);
        },
    };

    public static bool Exists(string name) => Table.ContainsKey(name);

    public static bool Apply(string name, object? value, Args args) =>
        Table.TryGetValue(name, out var test) ? test(value, args) : throw new JinjaError($"no test named '{name}'");

    private static bool Plain(Args args, string test, bool result)
    {
        args.Allow(test);
        return result;
    }

    private static long Integer(object? value, string test) => value switch
    {
        Undefined u => throw u.Error(),
        _ when Values.IsInteger(value) => Values.ToLong(value),
        _ => throw new JinjaError($"{test}: expected an integer, got {Values.TypeName(value)}"),
    };

    private static bool Against(object? value, Args args, string test, string op)
    {
        args.Allow(test, "other");
        return Operators.Compare(op, value, args.Required(0, "other", test));
    }
}
