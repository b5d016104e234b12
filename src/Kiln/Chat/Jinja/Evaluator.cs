using System.Runtime.CompilerServices;

namespace Kiln.Chat.Jinja;

/// <summary>Computes the value of an expression in a scope.</summary>
internal static class Evaluator
{
    public static object? Evaluate(Expr expr, Scope scope)
    {
        // Deep nesting (a long a + b + ... chain, recursive macros) ends in an error, not a crashed process.
        RuntimeHelpers.EnsureSufficientExecutionStack();
        try
        {
            return expr switch
            {
                Literal literal => literal.Value,
                Name name => scope.TryGet(name.Identifier, out var value) ? value : new Undefined($"'{name.Identifier}' is undefined"),
                ListExpr list => list.Items.Select(item => Evaluate(item, scope)).ToList(),
                TupleExpr tuple => tuple.Items.Select(item => Evaluate(item, scope)).ToArray(),
                DictExpr dict => EvaluateDict(dict, scope),
                GetAttr get => Access.Attribute(Evaluate(get.Target, scope), get.Attribute),
                GetItem get => Access.Item(Evaluate(get.Target, scope), Evaluate(get.Key, scope)),
                SliceExpr slice => Access.Slice(Evaluate(slice.Target, scope), EvaluateOptional(slice.Start, scope),
                    EvaluateOptional(slice.Stop, scope), EvaluateOptional(slice.Step, scope)),
                Call call => Invoke(Evaluate(call.Callee, scope), EvaluateArguments(call.Arguments, scope)),
                FilterExpr filter => Filters.Apply(filter.Filter, Evaluate(filter.Target, scope), EvaluateArguments(filter.Arguments, scope)),
                TestExpr test => TestFunctions.Apply(test.Test, Evaluate(test.Target, scope), EvaluateArguments(test.Arguments, scope)),
                Unary { Operator: "not" } not => !Values.IsTrue(Evaluate(not.Operand, scope)),
                Unary sign => Operators.Sign(sign.Operator, Evaluate(sign.Operand, scope)),
                Binary binary => EvaluateBinary(binary, scope),
                Compare compare => EvaluateCompare(compare, scope),
                Conditional conditional => Values.IsTrue(Evaluate(conditional.Condition, scope))
                    ? Evaluate(conditional.Then, scope)
                    : conditional.Else is { } otherwise ? Evaluate(otherwise, scope) : new Undefined("the conditional expression has no else branch"),
                _ => throw new JinjaError($"cannot evaluate {expr.GetType().Name}"),
            };
        }
        catch (JinjaError e) when (e.Offset is null)
        {
            throw e.At(expr.Offset);
        }
        catch (OverflowException)
        {
            throw new JinjaError("integer overflow", expr.Offset);
        }
    }

    /// <summary>The arguments of a call, filter or test, evaluated.</summary>
    public static Args EvaluateArguments(ArgumentList arguments, Scope scope)
    {
        if (arguments.Positional.Count == 0 && arguments.Keywords.Count == 0) return Args.None;
        var positional = arguments.Positional.Select(a => Evaluate(a, scope)).ToList();
        var keywords = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments.Keywords) keywords[name] = Evaluate(value, scope);
        return new Args(positional, keywords);
    }

    private static object? EvaluateOptional(Expr? expr, Scope scope) => expr is null ? null : Evaluate(expr, scope);

    private static object? Invoke(object? callee, Args args) => callee switch
    {
        TemplateFunction function => function.Invoke(args),
        Undefined undefined => throw undefined.Error(),
        _ => throw new JinjaError($"'{Values.TypeName(callee)}' object is not callable"),
    };

    private static OrderedDictionary<string, object?> EvaluateDict(DictExpr dict, Scope scope)
    {
        var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (keyExpr, valueExpr) in dict.Entries)
        {
            var key = Evaluate(keyExpr, scope);
            result[key as string ?? throw new JinjaError($"dict keys must be strings, not {Values.TypeName(key)}", keyExpr.Offset)] = Evaluate(valueExpr, scope);
        }
        return result;
    }

    // and / or return an operand, as in Python: the left one when it decides the result.
    private static object? EvaluateBinary(Binary binary, Scope scope)
    {
        var left = Evaluate(binary.Left, scope);
        return binary.Operator switch
        {
            "and" => Values.IsTrue(left) ? Evaluate(binary.Right, scope) : left,
            "or" => Values.IsTrue(left) ? left : Evaluate(binary.Right, scope),
            _ => Operators.Binary(binary.Operator, left, Evaluate(binary.Right, scope)),
        };
    }

    // a < b < c is a < b and b < c, each operand evaluated once.
    private static bool EvaluateCompare(Compare compare, Scope scope)
    {
        var left = Evaluate(compare.First, scope);
        foreach (var (op, operand) in compare.Rest)
        {
            var right = Evaluate(operand, scope);
            if (!Operators.Compare(op, left, right)) return false;
            left = right;
        }
        return true;
    }
}
