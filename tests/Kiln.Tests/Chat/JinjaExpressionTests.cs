namespace Kiln.Tests.Chat;

/// <summary>Expressions: literals, operators and their precedence, truth, attribute and item access, slices, tests.</summary>
public sealed class JinjaExpressionTests
{
    [Theory]
    // literals
    [InlineData("{{ 'single' }}{{ \"double\" }}", "singledouble")]
    [InlineData("{{ 'a' 'b' \"c\" }}", "abc")]
    [InlineData("{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 2.5 }} {{ 1e3 }} {{ 1.5e-7 }}", "42 -7 1000 2.5 1000.0 1.5e-07")]
    [InlineData("{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}", "True False None True None")]
    [InlineData("{{ [1, 'a', none, true, 2.5] }}", "[1, 'a', None, True, 2.5]")]
    [InlineData("{{ {'k': 'v', 'n': [1, {'x': none}]} }}", "{'k': 'v', 'n': [1, {'x': None}]}")]
    [InlineData("{{ (1, 'a') }} {{ (1,) }} {{ () }}", "(1, 'a') (1,) ()")]
    [InlineData("{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41' }} {{ 'back\\\\slash' }} {{ 'keep \\q' }}", "it's say \"hi\" tab\there éA back\\slash keep \\q")]
    [InlineData("{{ ['it\\'s', \"a\\\"b\", 'new\\nline'] }}", "[\"it's\", 'a\"b', 'new\\nline']")]
    [InlineData("{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 100.0 }} {{ 0.1 + 0.2 }} {{ -0.0 }}", "1e+16 1000000000000000.0 0.0001 1e-05 100.0 0.30000000000000004 -0.0")]
    // arithmetic
    [InlineData("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 - 2 - 1 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }} {{ 2 ** -1 }}", "7 9 4 1024 64 0.5")]
    [InlineData("{{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7.5 // 2 }}", "3.5 2.0 3 -4 3.0")]
    [InlineData("{{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }}", "1 2 -2 1.5")]
    [InlineData("{{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'x' * 0 }} {{ [1, 2] * 2 }}", "ababab xxx  [1, 2, 1, 2]")]
    [InlineData("{{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ (1,) + (2,) }} {{ 1 + 2.5 }} {{ true + 1 }}", "ab [1, 2, 3] (1, 2) 3.5 2")]
    [InlineData("{{ -n }} {{ +n }} {{ - 2 + 3 }} {{ -2 ** 2 }}", "-3 3 1 4")]
    // concatenation and precedence
    [InlineData("{{ 'a' ~ 1 ~ none ~ true ~ nothing ~ undefined_name }}", "a1NoneTrueNone")]
    [InlineData("{{ 'n=' ~ n * 2 }}", "n=6")]
    [InlineData("{{ 'x' + s | upper }}", "xHELLO")]
    [InlineData("{{ '  a  ' | trim ~ '|' }}", "a|")]
    // comparisons
    [InlineData("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == 'a' }} {{ [1, 2] == [1, 2] }} {{ [1] == (1,) }} {{ none == none }} {{ {'a': 1} == {'a': 1} }}", "True True True True False True True")]
    [InlineData("{{ 1 != 2 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2 }} {{ 1 <= 0.5 }}", "True True True True True False")]
    [InlineData("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 < n <= 3 }}", "True False True")]
    [InlineData("{{ 'ell' in s }} {{ 'z' not in s }} {{ 2 in items }} {{ 'a' in d }} {{ 1 in d }} {{ 'x' in undefined_name }}", "True True True True False False")]
    [InlineData("{{ undefined_name == undefined_name }} {{ undefined_name == none }} {{ undefined_name != 1 }}", "True False True")]
    // and, or, not, conditional
    [InlineData("{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ '' or 'b' }}|{{ 'a' or 'b' }}|{{ none or [] }}|{{ 0 or '' }}", "b||b|a|[]|")]
    [InlineData("{{ not '' }} {{ not 'a' }} {{ not 1 == 2 }} {{ not undefined_name }}", "True False True True")]
    [InlineData("{{ 'yes' if n > 2 else 'no' }}|{{ 'yes' if n > 5 }}|{{ 'a' if false else 'b' if false else 'c' }}", "yes||c")]
    [InlineData("{% if not undefined_name is defined %}not defined{% endif %}", "not defined")]
    // truth
    [InlineData("{% for v in [0, 1, 0.0, '', 'x', [], [0], {}, {'a': 1}, none, true, false] %}{{ 'T' if v else 'F' }}{% endfor %}", "FTFFTFTFTFTF")]
    // attribute and item access
    [InlineData("{{ d.a }} {{ d['a'] }} {{ d.b[1] }} {{ d['b'][-1] }} {{ messages[1].content }} {{ messages[-1]['role'] }} {{ messages.0.role }}", "1 1 2 2 Hi there user system")]
    [InlineData("{{ d.missing }}|{{ d['missing'] }}|{{ items[10] }}|{{ s[1] }}|{{ s[-1] }}", "|||e|o")]
    [InlineData("{{ d.keys() | list }} {{ d.get('a') }} {{ d.get('zz', 'fallback') }} {{ d.get('zz') }} {{ d.items is defined }}", "['a', 'b'] 1 fallback None True")]
    [InlineData("{{ {'a': {'b': [1, {'c': 'deep'}]}}['a']['b'][1].c }}", "deep")]
    // slicing
    [InlineData("{{ items[1:] }} {{ items[:-1] }} {{ items[::-1] }} {{ items[::2] }} {{ items[10:] }} {{ items[-2:] }} {{ items[:0] }}", "[1, 2] [3, 1] [2, 1, 3] [3, 2] [] [1, 2] []")]
    [InlineData("{{ s[1:3] }} {{ s[::-1] }} {{ s[:-2] }} {{ s[3:1] }} {{ s[4:1:-1] }}", "el olleh hel  oll")]
    [InlineData("{{ messages[1:] | length }} {{ messages[1:][0].role }} {{ (1, 2, 3)[1:] }}", "3 user (2, 3)")]
    // tests
    [InlineData("{{ undefined_name is defined }} {{ undefined_name is undefined }} {{ n is defined }} {{ d.missing is defined }}", "False True True False")]
    [InlineData("{{ none is none }} {{ nothing is none }} {{ 0 is none }} {{ n is not none }}", "True True False True")]
    [InlineData("{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }}", "True False True True True True True True")]
    [InlineData("{{ d is mapping }} {{ items is mapping }} {{ items is sequence }} {{ s is sequence }} {{ s is iterable }} {{ n is iterable }} {{ d is iterable }}", "True False True True True False True")]
    [InlineData("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }}", "True False True False")]
    [InlineData("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", "True True True False")]
    [InlineData("{{ 'ab' is eq 'ab' }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 is ge 2 }} {{ 1 is le 0 }} {{ 'a' is in 'abc' }}", "True False True True False True False True")]
    [InlineData("{{ 'ABC' is upper }} {{ 'abc' is lower }} {{ 'aBc' is lower }} {{ range is callable }} {{ n is callable }}", "True True False True False")]
    [InlineData("{{ n is sameas 3 }} {{ none is sameas none }} {{ true is sameas true }}", "True True True")]
    public void Evaluates_as_python_jinja(string template, string expected) => Assert.Equal(expected, Jinja.Render(template));

    [Theory]
    [InlineData("{{ undefined_name + 1 }}", "test: line 1, column 19: 'undefined_name' is undefined")]
    [InlineData("{{ undefined_name.attribute }}", "test: line 1, column 19: 'undefined_name' is undefined")]
    [InlineData("{{ undefined_name['key'] }}", "test: line 1, column 18: 'undefined_name' is undefined")]
    [InlineData("{{ undefined_name() }}", "test: line 1, column 4: 'undefined_name' is undefined")]
    [InlineData("{{ d.missing.deeper }}", "test: line 1, column 14: 'dict object' has no attribute 'missing'")]
    [InlineData("{{ empty[0].role }}", "test: line 1, column 13: list object has no element 0")]
    [InlineData("{{ undefined_name < 1 }}", "test: line 1, column 4: 'undefined_name' is undefined")]
    [InlineData("{{ -undefined_name }}", "test: line 1, column 4: 'undefined_name' is undefined")]
    public void Using_an_undefined_value_is_an_error_naming_it(string template, string message) => Assert.Equal(message, Jinja.Error(template));

    [Theory]
    [InlineData("{{ 'a' + 1 }}", "line 1, column 8: can only concatenate str (not \"int\") to str")]
    [InlineData("{{ 1 + 'a' }}", "line 1, column 6: unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{{ 1 + 2 ~ 3 }}", "line 1, column 6: unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{{ [1] + 'a' }}", "can only concatenate list (not \"str\") to list")]
    [InlineData("{{ 'a' - 'b' }}", "unsupported operand type(s) for -: 'str' and 'str'")]
    [InlineData("{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'")]
    [InlineData("{{ 1 in 'abc' }}", "'in <string>' requires string as left operand, not int")]
    [InlineData("{{ 1 in 5 }}", "argument of type 'int' is not iterable")]
    [InlineData("{{ 1 / 0 }}", "division by zero")]
    [InlineData("{{ 1 // 0 }}", "integer division or modulo by zero")]
    [InlineData("{{ 9223372036854775807 + 1 }}", "integer overflow")]
    [InlineData("{{ 2 ** 64 }}", "integer overflow")]
    [InlineData("{{ 'x' * 100000000 }}", "more than the limit of 16777216")]
    [InlineData("{{ n() }}", "'int' object is not callable")]
    [InlineData("{{ items['a':] }}", "slice indices must be integers or None")]
    [InlineData("{{ items[::0] }}", "slice step cannot be zero")]
    [InlineData("{{ {1: 'a'} }}", "dict keys must be strings, not int")]
    [InlineData("{{ n is nosuchtest }}", "no test named 'nosuchtest'")]
    [InlineData("{{ n is divisibleby 0 }}", "divisibleby: division by zero")]
    public void A_type_error_is_a_one_line_error(string template, string message)
    {
        var error = Jinja.Error(template);
        Assert.StartsWith("test: ", error);
        Assert.Contains(message, error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void Tests_cannot_be_chained() =>
        Assert.Equal("test: line 1, column 16: tests cannot be chained: x is a is b", Jinja.Error("{{ s is string is string }}"));

    [Fact]
    public void A_big_integer_literal_is_refused() =>
        Assert.Equal("test: line 1, column 4: the integer 99999999999999999999 is too large", Jinja.Error("{{ 99999999999999999999 }}"));
}
