using System.Globalization;

namespace Kiln.Chat.Jinja;

/// <summary>
/// Builds the statements of a template from its tokens, with Jinja's grammar and operator precedence
/// (loosest first): a if b else c; or; and; not; comparisons and in; + -; ~; * / // %; **; unary - +;
/// then postfix .attr [key] (call) and the filters (| f) and tests (is t) that bind tighter than any
/// binary operator, so 'a' + x | trim trims only x.
/// </summary>
internal sealed class Parser
{
    // Nested brackets, unary operators and tags beyond this are refused rather than risking the stack.
    private const int MaxDepth = 200;

    // Jinja tags Kiln does not implement: named in the error instead of "unknown tag".
    private static readonly HashSet<string> UnsupportedTags =
        ["block", "call", "do", "extends", "filter", "from", "import", "include", "raw", "with", "autoescape", "trans"];

    private static readonly HashSet<string> Constants = ["true", "false", "none", "True", "False", "None"];

    private readonly List<Token> tokens;
    private int index;
    private int depth;
    private int loopDepth;

    private Parser(List<Token> tokens) => this.tokens = tokens;

    public static IReadOnlyList<Node> Parse(List<Token> tokens) => new Parser(tokens).ParseBody(opener: null);

    private Token Current => tokens[index];

    private Token Peek(int ahead = 1) => tokens[Math.Min(index + ahead, tokens.Count - 1)];

    private Token Advance()
    {
        var token = tokens[index];
        if (token.Kind != TokenKind.End) index++;
        return token;
    }

    // The statements up to one of endTags ({% endfor %}, {% else %}, ...), which is left for the caller to
    // read, or up to the end of the template when endTags is empty. opener is the unclosed tag, for the error.
    private List<Node> ParseBody(Token? opener, params string[] endTags)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.Text:
                    nodes.Add(new TextNode(token.Value, token.Offset));
                    Advance();
                    break;
                case TokenKind.VariableBegin:
                    Advance();
                    nodes.Add(new OutputNode(ParseTuple(), token.Offset));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    if (Peek().Kind == TokenKind.Name && endTags.Contains(Peek().Value)) return nodes;
                    Advance();
                    ParseStatement(nodes);
                    break;
                case TokenKind.End:
                    if (opener is { } open)
                        throw new JinjaError($"'{{% {open.Value} %}}' is not closed (expected {string.Join(" or ", endTags.Select(t => $"'{{% {t} %}}'"))})", open.Offset);
                    return nodes;
                default:
                    throw Unexpected(token);
            }
        }
    }

    // After "{%": one statement, appended to nodes (a generation block appends its body).
    private void ParseStatement(List<Node> nodes)
    {
        var keyword = Expect(TokenKind.Name);
        Enter(keyword);
        switch (keyword.Value)
        {
            case "if": nodes.Add(ParseIf(keyword)); break;
            case "for": nodes.Add(ParseFor(keyword)); break;
            case "set": nodes.Add(ParseSet(keyword)); break;
            case "macro": nodes.Add(ParseMacro(keyword)); break;
            case "break" or "continue":
                if (loopDepth == 0) throw new JinjaError($"'{{% {keyword.Value} %}}' outside a loop", keyword.Offset);
                Expect(TokenKind.BlockEnd);
                nodes.Add(keyword.Value == "break" ? new BreakNode(keyword.Offset) : new ContinueNode(keyword.Offset));
                break;
            case "generation":
                // transformers' own tag marking the assistant's text for training masks; rendering ignores it.
                Expect(TokenKind.BlockEnd);
                nodes.AddRange(ParseBody(keyword, "endgeneration"));
                EndTag();
                break;
            default:
                throw new JinjaError(UnsupportedTags.Contains(keyword.Value)
                    ? $"'{{% {keyword.Value} %}}' is not supported"
                    : keyword.Value.StartsWith("end", StringComparison.Ordinal) || keyword.Value is "elif" or "else"
                        ? $"unexpected '{{% {keyword.Value} %}}'"
                        : $"unknown tag '{keyword.Value}'", keyword.Offset);
        }
        depth--;
    }

    // Reads "{% endxxx %}" (or else/elif's name) and its end; the name was checked by ParseBody.
    private string EndTag()
    {
        Expect(TokenKind.BlockBegin);
        var name = Advance().Value;
        if (name != "elif") Expect(TokenKind.BlockEnd);
        return name;
    }

    private IfNode ParseIf(Token keyword)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = ParseTuple(withConditional: false);
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            branches.Add((condition, ParseBody(keyword, "elif", "else", "endif")));
            switch (EndTag())
            {
                case "elif":
                    condition = ParseTuple(withConditional: false);
                    Expect(TokenKind.BlockEnd);
                    continue;
                case "else":
                    var otherwise = ParseBody(keyword, "endif");
                    EndTag();
                    return new IfNode(branches, otherwise, keyword.Offset);
                default:
                    return new IfNode(branches, [], keyword.Offset);
            }
        }
    }

    private ForNode ParseFor(Token keyword)
    {
        var target = ParseTarget(allowAttribute: false);
        ExpectName("in");
        var iterable = ParseTuple(withConditional: false);
        Expr? filter = null;
        if (Current.IsName("if"))
        {
            Advance();
            filter = ParseExpression();
        }
        if (Current.IsName("recursive")) throw new JinjaError("recursive loops are not supported", Current.Offset);
        Expect(TokenKind.BlockEnd);
        loopDepth++;
        var body = ParseBody(keyword, "else", "endfor");
        loopDepth--;
        IReadOnlyList<Node> otherwise = [];
        if (EndTag() == "else")
        {
            otherwise = ParseBody(keyword, "endfor");
            EndTag();
        }
        return new ForNode(target, iterable, filter, body, otherwise, keyword.Offset);
    }

    private Node ParseSet(Token keyword)
    {
        var target = ParseTarget(allowAttribute: true);
        if (Current.IsOperator("="))
        {
            Advance();
            var value = ParseTuple();
            Expect(TokenKind.BlockEnd);
            return new SetNode(target, value, keyword.Offset);
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(keyword, "endset");
        EndTag();
        return new SetBlockNode(target, body, keyword.Offset);
    }

    private MacroNode ParseMacro(Token keyword)
    {
        var name = Expect(TokenKind.Name);
        ExpectOperator("(");
        var parameters = new List<Parameter>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0) ExpectOperator(",");
            if (Current.IsOperator(")")) break;
            var parameter = Expect(TokenKind.Name);
            Expr? defaultValue = null;
            if (Current.IsOperator("="))
            {
                Advance();
                defaultValue = ParseExpression();
            }
            else if (parameters.Count > 0 && parameters[^1].Default is not null)
                throw new JinjaError("a parameter without a default follows one with a default", parameter.Offset);
            parameters.Add(new Parameter(parameter.Value, defaultValue));
        }
        Advance();
        Expect(TokenKind.BlockEnd);
        // A macro's body is not inside the loops around its definition: break there is an error.
        var outerLoops = loopDepth;
        loopDepth = 0;
        var body = ParseBody(keyword, "endmacro");
        loopDepth = outerLoops;
        EndTag();
        return new MacroNode(name.Value, parameters, body, keyword.Offset);
    }

    // name, ns.attribute (for set), or a tuple of names: a, b or (a, b).
    private Target ParseTarget(bool allowAttribute)
    {
        var start = Current;
        if (allowAttribute && start.Kind == TokenKind.Name && Peek().IsOperator(".") && Peek(2).Kind == TokenKind.Name)
        {
            Advance();
            Advance();
            return new AttributeTarget(start.Value, Advance().Value, start.Offset);
        }
        var items = new List<Target> { ParseTargetItem() };
        while (Current.IsOperator(","))
        {
            Advance();
            items.Add(ParseTargetItem());
        }
        return items.Count == 1 ? items[0] : new TupleTarget(items, start.Offset);
    }

    private Target ParseTargetItem()
    {
        if (Current.IsOperator("("))
        {
            Advance();
            var inner = ParseTarget(allowAttribute: false);
            ExpectOperator(")");
            return inner;
        }
        var name = Expect(TokenKind.Name);
        if (Constants.Contains(name.Value)) throw new JinjaError($"cannot assign to '{name.Value}'", name.Offset);
        return new NameTarget(name.Value, name.Offset);
    }

    // expression, or a tuple when commas follow: "{{ a, b }}", "{% set x = 1, 2 %}".
    private Expr ParseTuple(bool withConditional = true)
    {
        var start = Current;
        var first = ParseExpression(withConditional);
        if (!Current.IsOperator(",")) return first;
        var items = new List<Expr> { first };
        while (Current.IsOperator(","))
        {
            Advance();
            if (IsTupleEnd()) break;
            items.Add(ParseExpression(withConditional));
        }
        return new TupleExpr(items, start.Offset);
    }

    private bool IsTupleEnd() =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || Current.IsOperator(")") || Current.IsName("if");

    private Expr ParseExpression(bool withConditional = true)
    {
        Enter(Current);
        var result = withConditional ? ParseConditional() : ParseOr();
        depth--;
        return result;
    }

    private Expr ParseConditional()
    {
        var result = ParseOr();
        while (Current.IsName("if"))
        {
            var keyword = Advance();
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Current.IsName("else"))
            {
                Advance();
                otherwise = ParseConditional();
            }
            result = new Conditional(condition, result, otherwise, keyword.Offset);
        }
        return result;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            var op = Advance();
            left = new Binary("or", left, ParseAnd(), op.Offset);
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            var op = Advance();
            left = new Binary("and", left, ParseNot(), op.Offset);
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (!Current.IsName("not")) return ParseCompare();
        var op = Advance();
        Enter(op);
        var operand = ParseNot();
        depth--;
        return new Unary("not", operand, op.Offset);
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var token = Current;
            if (token.Kind == TokenKind.Operator && token.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                Advance();
                rest.Add((token.Value, ParseMath1()));
            }
            else if (token.IsName("in"))
            {
                Advance();
                rest.Add(("in", ParseMath1()));
            }
            else if (token.IsName("not") && Peek().IsName("in"))
            {
                Advance();
                Advance();
                rest.Add(("not in", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new Compare(first, rest, first.Offset);
    }

    // Jinja's precedence: + and - bind looser than ~, which binds looser than * / // %.
    private Expr ParseMath1() => ParseLeftAssociative(ParseConcat, "+", "-");

    private Expr ParseConcat() => ParseLeftAssociative(ParseMath2, "~");

    private Expr ParseMath2() => ParseLeftAssociative(ParsePower, "*", "/", "//", "%");

    // Left-associative, as Jinja has it (2 ** 3 ** 2 is 64).
    private Expr ParsePower() => ParseLeftAssociative(() => ParseUnary(), "**");

    private Expr ParseLeftAssociative(Func<Expr> operand, params string[] operators)
    {
        var left = operand();
        while (Current.Kind == TokenKind.Operator && operators.Contains(Current.Value))
        {
            var op = Advance();
            left = new Binary(op.Value, left, operand(), op.Offset);
        }
        return left;
    }

    private Expr ParseUnary(bool withFilters = true)
    {
        var token = Current;
        Expr result;
        if (token.IsOperator("-") || token.IsOperator("+"))
        {
            Advance();
            Enter(token);
            result = new Unary(token.Value, ParseUnary(withFilters: false), token.Offset);
            depth--;
        }
        else result = ParsePrimary();
        result = ParsePostfix(result);
        return withFilters ? ParseFiltersAndTests(result) : result;
    }

    private Expr ParsePrimary()
    {
        var token = Advance();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new Literal(true, token.Offset),
                    "false" or "False" => new Literal(false, token.Offset),
                    "none" or "None" => new Literal(null, token.Offset),
                    _ => new Name(token.Value, token.Offset),
                };
            case TokenKind.String:
                // Adjacent literals are one string, as in Python: 'a' "b" is 'ab'.
                var text = token.Value;
                while (Current.Kind == TokenKind.String) text += Advance().Value;
                return new Literal(text, token.Offset);
            case TokenKind.Integer:
                if (!long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer))
                    throw new JinjaError($"the integer {token.Value} is too large", token.Offset);
                return new Literal(integer, token.Offset);
            case TokenKind.Float:
                return new Literal(double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture), token.Offset);
            case TokenKind.Operator when token.Value == "(":
                if (Current.IsOperator(")"))
                {
                    Advance();
                    return new TupleExpr([], token.Offset);
                }
                var inner = ParseTuple();
                ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                return new ListExpr(ParseItems("]"), token.Offset);
            case TokenKind.Operator when token.Value == "{":
                var entries = new List<(Expr, Expr)>();
                while (!Current.IsOperator("}"))
                {
                    if (entries.Count > 0) ExpectOperator(",");
                    if (Current.IsOperator("}")) break;
                    var key = ParseExpression();
                    ExpectOperator(":");
                    entries.Add((key, ParseExpression()));
                }
                Advance();
                return new DictExpr(entries, token.Offset);
            default:
                throw Unexpected(token);
        }
    }

    // Comma-separated expressions up to the closing bracket (a trailing comma allowed); reads the bracket.
    private List<Expr> ParseItems(string close)
    {
        var items = new List<Expr>();
        while (!Current.IsOperator(close))
        {
            if (items.Count > 0) ExpectOperator(",");
            if (Current.IsOperator(close)) break;
            items.Add(ParseExpression());
        }
        Advance();
        return items;
    }

    private Expr ParsePostfix(Expr target)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("."))
            {
                Advance();
                var attribute = Advance();
                target = attribute.Kind switch
                {
                    TokenKind.Name => new GetAttr(target, attribute.Value, attribute.Offset),
                    // messages.0 is messages[0].
                    TokenKind.Integer => new GetItem(target, new Literal(long.Parse(attribute.Value, CultureInfo.InvariantCulture), attribute.Offset), attribute.Offset),
                    _ => throw Unexpected(attribute),
                };
            }
            else if (token.IsOperator("[")) target = ParseSubscript(target);
            else if (token.IsOperator("(")) target = new Call(target, ParseArguments(), target.Offset);
            else return target;
        }
    }

    // After the target: [key] or [start:stop:step] with any part omitted.
    private Expr ParseSubscript(Expr target)
    {
        var open = Advance();
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":"))
            {
                ExpectOperator("]");
                return new GetItem(target, start, open.Offset);
            }
        }
        Advance();
        Expr? stop = null, step = null;
        if (!Current.IsOperator("]") && !Current.IsOperator(":")) stop = ParseExpression();
        if (Current.IsOperator(":"))
        {
            Advance();
            if (!Current.IsOperator("]")) step = ParseExpression();
        }
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, open.Offset);
    }

    private Expr ParseFiltersAndTests(Expr target)
    {
        while (true)
        {
            if (Current.IsOperator("|"))
            {
                Advance();
                var name = DottedName();
                if (!Filters.Exists(name.Value)) throw new JinjaError($"no filter named '{name.Value}'", name.Offset);
                var arguments = Current.IsOperator("(") ? ParseArguments() : ArgumentList.Empty;
                target = new FilterExpr(target, name.Value, arguments, name.Offset);
            }
            else if (Current.IsName("is"))
            {
                Advance();
                var negated = Current.IsName("not");
                if (negated) Advance();
                var name = DottedName();
                var arguments = ArgumentList.Empty;
                if (Current.IsOperator("(")) arguments = ParseArguments();
                else if (StartsTestArgument(Current))
                    // "x is divisibleby 3": one argument without parentheses.
                    arguments = new ArgumentList([ParsePostfix(ParsePrimary())], []);
                if (Current.IsName("is")) throw new JinjaError("tests cannot be chained: x is a is b", Current.Offset);
                target = new TestExpr(target, name.Value, arguments, name.Offset);
                if (negated) target = new Unary("not", target, name.Offset);
            }
            else if (Current.IsOperator("(")) target = new Call(target, ParseArguments(), target.Offset);
            else return target;
        }
    }

    private static bool StartsTestArgument(Token token) => token.Kind switch
    {
        TokenKind.Name => token.Value is not ("else" or "or" or "and" or "is"),
        TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
        TokenKind.Operator => token.Value is "[" or "{",
        _ => false,
    };

    private Token DottedName()
    {
        var name = Expect(TokenKind.Name);
        var value = name.Value;
        while (Current.IsOperator(".") && Peek().Kind == TokenKind.Name)
        {
            Advance();
            value += "." + Advance().Value;
        }
        return name with { Value = value };
    }

    // (a, b, key=c): positional arguments first, then keywords.
    private ArgumentList ParseArguments()
    {
        ExpectOperator("(");
        var positional = new List<Expr>();
        var keywords = new List<(string, Expr)>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + keywords.Count > 0) ExpectOperator(",");
            if (Current.IsOperator(")")) break;
            if (Current.IsOperator("*") || Current.IsOperator("**"))
                throw new JinjaError("*args and **kwargs in calls are not supported", Current.Offset);
            if (Current.Kind == TokenKind.Name && Peek().IsOperator("="))
            {
                var name = Advance();
                Advance();
                if (keywords.Any(k => k.Item1 == name.Value)) throw new JinjaError($"keyword argument '{name.Value}' repeated", name.Offset);
                keywords.Add((name.Value, ParseExpression()));
            }
            else
            {
                if (keywords.Count > 0) throw new JinjaError("a positional argument follows a keyword argument", Current.Offset);
                positional.Add(ParseExpression());
            }
        }
        Advance();
        return new ArgumentList(positional, keywords);
    }

    private Token Expect(TokenKind kind)
    {
        if (Current.Kind != kind)
        {
            var expected = new Token(kind, "", 0).Describe();
            throw new JinjaError($"expected {(kind == TokenKind.Name ? "a name" : expected)}, found {Current.Describe()}", Current.Offset);
        }
        return Advance();
    }

    private void ExpectOperator(string op)
    {
        if (!Current.IsOperator(op)) throw new JinjaError($"expected '{op}', found {Current.Describe()}", Current.Offset);
        Advance();
    }

    private void ExpectName(string name)
    {
        if (!Current.IsName(name)) throw new JinjaError($"expected '{name}', found {Current.Describe()}", Current.Offset);
        Advance();
    }

    private static JinjaError Unexpected(Token token) => new($"unexpected {token.Describe()}", token.Offset);

    private void Enter(Token at)
    {
        if (++depth > MaxDepth) throw new JinjaError($"the template nests more than {MaxDepth} levels deep", at.Offset);
    }
}
