namespace Kiln.Chat.Jinja;

/// <summary>
/// The operators with Python's meaning: int arithmetic stays int (except /), // and % round toward minus
/// infinity, + joins strings and lists, * repeats them, ~ joins the printed forms of anything. An undefined
/// operand is an error everywhere except ~, == and !=.
/// </summary>
internal static class Operators
{
    // Repetition and range() are bounded so that a template cannot ask for gigabytes.
    public const long MaxRepeatedLength = 1 << 24;

    public static object? Binary(string op, object? left, object? right)
    {
        if (op == "~") return ValueText.Str(left) + ValueText.Str(right);
        if (left is Undefined l) throw l.Error();
        if (right is Undefined r) throw r.Error();
        try
        {
            return op switch
            {
                "+" => Add(left, right),
                "*" => Multiply(left, right),
                _ => Arithmetic(op, left, right),
            };
        }
        catch (OverflowException)
        {
            throw new JinjaError($"integer overflow in {ValueText.Repr(left)} {op} {ValueText.Repr(right)}");
        }
    }

    /// <summary>==, !=, &lt;, &gt;, &lt;=, &gt;=, in and "not in".</summary>
    public static bool Compare(string op, object? left, object? right) => op switch
    {
        "==" => Values.AreEqual(left, right),
        "!=" => !Values.AreEqual(left, right),
        "<" => Values.Compare(left, right) < 0,
        ">" => Values.Compare(left, right) > 0,
        "<=" => Values.Compare(left, right) <= 0,
        ">=" => Values.Compare(left, right) >= 0,
        "in" => Values.Contains(right, left),
        "not in" => !Values.Contains(right, left),
        _ => throw new JinjaError($"unknown comparison '{op}'"),
    };

    /// <summary>Unary minus and plus.</summary>
    public static object? Sign(string op, object? value) => value switch
    {
        Undefined u => throw u.Error(),
        // The casts keep an int an int: a switch of double and long arms would be all double.
        double d => (object)(op == "-" ? -d : d),
        _ when Values.IsInteger(value) => op == "-" ? checked(-Values.ToLong(value)) : Values.ToLong(value),
        _ => throw new JinjaError($"bad operand type for unary {op}: '{Values.TypeName(value)}'"),
    };

    private static object? Add(object? left, object? right) => (left, right) switch
    {
        (string a, string b) => a + b,
        (List<object?> a, List<object?> b) => a.Concat(b).ToList(),
        (object?[] a, object?[] b) => a.Concat(b).ToArray(),
        (string, _) => throw new JinjaError($"can only concatenate str (not \"{Values.TypeName(right)}\") to str"),
        (List<object?>, _) => throw new JinjaError($"can only concatenate list (not \"{Values.TypeName(right)}\") to list"),
        _ => Arithmetic("+", left, right),
    };

    private static object? Multiply(object? left, object? right)
    {
        if (Values.IsInteger(left) && right is string or IList<object?>) (left, right) = (right, left);
        if (left is string or IList<object?> && Values.IsInteger(right))
        {
            var times = Math.Max(0, Values.ToLong(right));
            var length = left is string s ? s.Length : ((IList<object?>)left).Count;
            if (times * (double)length > MaxRepeatedLength)
                throw new JinjaError($"repeating {length} items {times} times is more than the limit of {MaxRepeatedLength}");
            return left switch
            {
                string text => string.Concat(Enumerable.Repeat(text, (int)times)),
                object?[] tuple => Enumerable.Repeat(tuple, (int)times).SelectMany(t => t).ToArray(),
                _ => Enumerable.Repeat((IList<object?>)left, (int)times).SelectMany(l => l).ToList(),
            };
        }
        return Arithmetic("*", left, right);
    }

    private static object? Arithmetic(string op, object? left, object? right)
    {
        if (!Values.IsNumber(left) || !Values.IsNumber(right))
            throw new JinjaError($"unsupported operand type(s) for {op}: '{Values.TypeName(left)}' and '{Values.TypeName(right)}'");
        if (Values.IsInteger(left) && Values.IsInteger(right) && op != "/")
            return IntegerArithmetic(op, Values.ToLong(left), Values.ToLong(right));
        var (a, b) = (Values.ToDouble(left), Values.ToDouble(right));
        if (b == 0 && op is "/" or "//" or "%") throw new JinjaError("division by zero");
        return op switch
        {
            "+" => a + b,
            "-" => a - b,
            "*" => a * b,
            "/" => a / b,
            "//" => Math.Floor(a / b),
            "%" => a - b * Math.Floor(a / b),
            "**" => Math.Pow(a, b),
            _ => throw new JinjaError($"unknown operator '{op}'"),
        };
    }

    private static object? IntegerArithmetic(string op, long a, long b)
    {
        if (b == 0 && op is "//" or "%") throw new JinjaError("integer division or modulo by zero");
        return op switch
        {
            "+" => checked(a + b),
            "-" => checked(a - b),
            "*" => checked(a * b),
            "//" => FloorDivide(a, b),
            "%" => a - checked(b * FloorDivide(a, b)),
            // A negative power of an int is a float in Python.
            "**" => b < 0 ? (object)Math.Pow(a, b) : Power(a, b),
            _ => throw new JinjaError($"unknown operator '{op}'"),
        };
    }

    private static long FloorDivide(long a, long b)
    {
        var quotient = checked(a / b);
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
    }

    private static long Power(long a, long b)
    {
        var result = 1L;
        for (var i = 0L; i < b; i++)
        {
            result = checked(result * a);
            // 0, 1 and -1 never overflow: stop early however large the exponent.
            if (a is 0 or 1) return result;
            if (a == -1) return b % 2 == 0 ? 1 : -1;
        }
        return result;
    }
}
