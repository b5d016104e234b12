using Kiln.Graph;

namespace Kiln.Transforms.Cleanups;

/// <summary>
/// Evaluates ops on scalar constants as the runtime would: floats rounded to their dtype after each
/// op, integers in 64-bit arithmetic (wrapped to 32 bits for i32). Null means "do not fold": an
/// unsupported op or dtype, a non-finite result, a division by zero, or an integer a double cannot hold.
/// </summary>
internal static class ScalarArithmetic
{
    // Integers beyond 2^53 do not survive the double of a constant's attribute.
    private const double MaxExactInteger = 9007199254740992;

    /// <summary>The value a constant of <paramref name="dtype"/> holds at run time (as lowering converts it).</summary>
    public static double? Represent(double value, DType dtype) => dtype switch
    {
        DType.F64 => value,
        DType.F32 => (float)value,
        DType.F16 => (double)(Half)value,
        DType.I64 or DType.I32 when !double.IsFinite(value) || Math.Abs(Math.Truncate(value)) > MaxExactInteger => null,
        DType.I64 => Math.Truncate(value),
        DType.I32 => unchecked((int)(long)Math.Truncate(value)),
        DType.Bool => value != 0 ? 1 : 0,
        _ => null,
    };

    /// <summary><paramref name="op"/> applied to operands that are run-time values of their dtypes; the result has <paramref name="dtype"/>.</summary>
    public static double? Evaluate(string op, double[] operands, DType dtype)
    {
        var result = op == "cast" ? Represent(operands[0], dtype) : dtype switch
        {
            _ when dtype.IsFloat() => Float(op, operands) is { } r ? Represent(r, dtype) : null,
            DType.I64 or DType.I32 => Integer(op, operands.Select(v => (long)v).ToArray()) is { } i ? Represent(i, dtype) : null,
            _ => null,
        };
        return result is { } value && double.IsFinite(value) ? value : null;
    }

    private static double? Float(string op, double[] x) => op switch
    {
        "add" => x[0] + x[1],
        "sub" => x[0] - x[1],
        "mul" => x[0] * x[1],
        "div" => x[0] / x[1],
        "pow" => Math.Pow(x[0], x[1]),
        "neg" => -x[0],
        "sqrt" => Math.Sqrt(x[0]),
        "rsqrt" => 1 / Math.Sqrt(x[0]),
        "exp" => Math.Exp(x[0]),
        "cos" => Math.Cos(x[0]),
        "sin" => Math.Sin(x[0]),
        "tanh" => Math.Tanh(x[0]),
        "sigmoid" => 1 / (1 + Math.Exp(-x[0])),
        _ => null,
    };

    // Wrapping arithmetic as the runtime's; division truncates toward zero as ONNX Div does.
    private static long? Integer(string op, long[] x) => op switch
    {
        "add" => unchecked(x[0] + x[1]),
        "sub" => unchecked(x[0] - x[1]),
        "mul" => unchecked(x[0] * x[1]),
        "div" when x[1] == 0 || (x[0] == long.MinValue && x[1] == -1) => null,
        "div" => x[0] / x[1],
        "pow" when x[1] < 0 => null,
        "pow" => Power(x[0], x[1]),
        "neg" => unchecked(-x[0]),
        _ => null,
    };

    private static long Power(long b, long e)
    {
        var result = 1L;
        for (; e > 0; e >>= 1, b = unchecked(b * b))
        {
            if ((e & 1) != 0) result = unchecked(result * b);
        }
        return result;
    }
}
