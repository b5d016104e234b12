using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>Runs a template's statements, appending what they print to the output.</summary>
internal static class Renderer
{
    // How a run of statements ended: normally, or at a {% break %} or {% continue %} for the loop to act on.
    private enum Flow { Normal, Break, Continue }

    public static void Render(IReadOnlyList<Node> body, Scope scope, StringBuilder output) => Execute(body, scope, output);

    private static Flow Execute(IReadOnlyList<Node> nodes, Scope scope, StringBuilder output)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        foreach (var node in nodes)
        {
            Flow flow;
            try
            {
                flow = node switch
                {
                    TextNode text => Append(output, text.Text),
                    OutputNode print => Append(output, ValueText.Str(Evaluator.Evaluate(print.Value, scope))),
                    IfNode branches => ExecuteIf(branches, scope, output),
                    ForNode loop => ExecuteFor(loop, scope, output),
                    SetNode set => Assign(set.Target, Evaluator.Evaluate(set.Value, scope), scope),
                    SetBlockNode set => Assign(set.Target, RenderToString(set.Body, scope), scope),
                    MacroNode macro => Define(macro, scope),
                    BreakNode => Flow.Break,
                    ContinueNode => Flow.Continue,
                    _ => throw new JinjaError($"cannot run {node.GetType().Name}"),
                };
            }
            catch (JinjaError e) when (e.Offset is null)
            {
                throw e.At(node.Offset);
            }
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private static Flow Append(StringBuilder output, string text)
    {
        output.Append(text);
        return Flow.Normal;
    }

    private static string RenderToString(IReadOnlyList<Node> body, Scope scope)
    {
        var output = new StringBuilder();
        Execute(body, scope, output);
        return output.ToString();
    }

    // An if runs in the scope around it: what it sets stays set after it.
    private static Flow ExecuteIf(IfNode node, Scope scope, StringBuilder output)
    {
        foreach (var (condition, body) in node.Branches)
        {
            if (Values.IsTrue(Evaluator.Evaluate(condition, scope))) return Execute(body, scope, output);
        }
        return Execute(node.Else, scope, output);
    }

    // Each iteration runs in a scope of its own, so what it sets is gone at the next one (use a namespace to
    // carry a value out). The items are taken once, filtered by the loop's "if", then counted for loop.length.
    private static Flow ExecuteFor(ForNode node, Scope scope, StringBuilder output)
    {
        var items = Values.Iterate(Evaluator.Evaluate(node.Iterable, scope));
        if (node.Filter is { } filter)
        {
            items = items.Where(item =>
            {
                var test = new Scope(scope);
                Assign(node.Target, item, test);
                return Values.IsTrue(Evaluator.Evaluate(filter, test));
            }).ToList();
        }
        if (items.Count == 0) return Execute(node.Else, new Scope(scope), output);
        var loop = new LoopContext(items);
        for (var i = 0; i < items.Count; i++)
        {
            var iteration = new Scope(scope);
            loop.Index0 = i;
            iteration.Set("loop", loop);
            Assign(node.Target, items[i], iteration);
            if (Execute(node.Body, iteration, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private static Flow Assign(Target target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameTarget name:
                scope.Set(name.Name, value);
                break;
            case AttributeTarget attribute:
                if (!scope.TryGet(attribute.Name, out var owner) || owner is not Namespace ns)
                    throw new JinjaError($"cannot set an attribute of '{attribute.Name}': only a namespace() has settable attributes", attribute.Offset);
                ns.Attributes[attribute.Attribute] = value;
                break;
            case TupleTarget tuple:
                var items = Values.Iterate(value);
                if (items.Count != tuple.Items.Count)
                    throw new JinjaError(items.Count < tuple.Items.Count
                        ? $"not enough values to unpack (expected {tuple.Items.Count}, got {items.Count})"
                        : $"too many values to unpack (expected {tuple.Items.Count})", tuple.Offset);
                for (var i = 0; i < items.Count; i++) Assign(tuple.Items[i], items[i], scope);
                break;
        }
        return Flow.Normal;
    }

    // A macro sees the scope it was defined in (as it is when called), its parameters, and nothing of its caller's.
    private static Flow Define(MacroNode macro, Scope scope)
    {
        scope.Set(macro.Name, new TemplateFunction(macro.Name, args =>
        {
            var local = new Scope(scope);
            if (args.Positional.Count > macro.Parameters.Count)
                throw new JinjaError($"macro '{macro.Name}' takes not more than {macro.Parameters.Count} argument(s)");
            foreach (var name in args.Keywords.Keys.Where(k => macro.Parameters.All(p => p.Name != k)))
                throw new JinjaError($"macro '{macro.Name}' takes no keyword argument '{name}'");
            for (var i = 0; i < macro.Parameters.Count; i++)
            {
                var parameter = macro.Parameters[i];
                local.Set(parameter.Name, args.Has(i, parameter.Name) ? args.Get(i, parameter.Name)
                    : parameter.Default is { } fallback ? Evaluator.Evaluate(fallback, local)
                    : new Undefined($"'{parameter.Name}' is undefined"));
            }
            return RenderToString(macro.Body, local);
        }));
        return Flow.Normal;
    }
}
