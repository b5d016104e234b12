namespace Kiln.Tests.Chat;

/// <summary>Statements: if, for and loop, set and its scoping, namespace, block set, macros, the globals, comments.</summary>
public sealed class JinjaStatementTests
{
    [Theory]
    // if, elif, else
    [InlineData("{% if n == 1 %}one{% elif n == 3 %}three{% else %}other{% endif %}", "three")]
    [InlineData("{% if n == 1 %}one{% elif n == 2 %}two{% else %}other{% endif %}", "other")]
    [InlineData("{% if undefined_name %}yes{% endif %}|{% if messages %}has messages{% endif %}", "|has messages")]
    [InlineData("{% if (messages[0]['role'] == 'user') != (0 % 2 == 0) %}alternation broken{% endif %}", "alternation broken")]
    // for and loop
    [InlineData("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ 'F' if loop.first }}{{ 'L' if loop.last }} {% endfor %}", "10434F 21324 32214 43104L ")]
    [InlineData("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ m.role }}>{{ loop.nextitem.role if loop.nextitem is defined else '-' }} {% endfor %}", "->system>user system>user>assistant user>assistant>user assistant>user>- ")]
    [InlineData("{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.content }} {% endfor %}", "1/3:Hi there 2/3:Hello! 3/3:Bye ")]
    [InlineData("{% for m in empty %}x{% else %}nothing{% endfor %}", "nothing")]
    [InlineData("{% for m in messages if m.role == 'tool' %}x{% else %}no tool{% endfor %}", "no tool")]
    [InlineData("{% for k in d %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for (a, b) in [[1, 2]] %}{{ a + b }}{% endfor %}", "ab a=1;b=[1, 2]; 3")]
    [InlineData("{% for c in s %}{{ c }}.{% endfor %}", "h.e.l.l.o.")]
    [InlineData("{% for x in [1, 2] %}{% for y in 'ab' %}{{ x }}{{ y }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}", "1a1 1b2 1|2a1 2b2 2|")]
    [InlineData("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", "0134")]
    [InlineData("{% for x in items %}{{ loop.cycle('odd', 'even') }} {% endfor %}", "odd even odd ")]
    [InlineData("{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}", "uaus")]
    [InlineData("{% for i in range(3) %}{% set last = i %}{% endfor %}[{{ last }}]", "[]")]
    // set and scoping
    [InlineData("{% set x = 1 %}{% set y = x + 1 %}{{ x }}{{ y }}", "12")]
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", "12(1, 2)")]
    [InlineData("{% if true %}{% set inside_if = 'kept' %}{% endif %}{{ inside_if }}", "kept")]
    [InlineData("{% set x = 'outer' %}{% for i in range(2) %}{{ x }}{% set x = 'inner' %}{{ x }} {% endfor %}{{ x }}", "outerinner outerinner outer")]
    [InlineData("{% for i in range(3) %}{% if i == 0 %}{% set first = 'a' %}{% endif %}[{{ first }}]{% endfor %}", "[a][][]")]
    [InlineData("{% set found = false %}{% for m in messages %}{% if m.role == 'system' %}{% set found = true %}{% endif %}{% endfor %}{{ found }}", "False")]
    [InlineData("{% set messages = messages[1:] %}{{ messages | length }} {{ messages[0].role }}", "3 user")]
    // namespace
    [InlineData("{% set ns = namespace(found=false, count=0) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.found = true %}{% endif %}{% set ns.count = ns.count + 1 %}{% endfor %}{{ ns.found }} {{ ns.count }}", "True 4")]
    [InlineData("{% set ns = namespace() %}{% set ns.text = '' %}{% for m in messages %}{% set ns.text = ns.text + m.role[:1] %}{% endfor %}{{ ns.text }}", "suau")]
    [InlineData("{% set ns = namespace(d) %}{{ ns.a }} {{ ns.b }} {{ ns.missing is defined }}", "1 [1, 2] False")]
    // block set
    [InlineData("{% set block %}{{ n }} and {{ n * 2 }}{% endset %}[{{ block }}]", "[3 and 6]")]
    [InlineData("{% set block %}\n  line\n{% endset %}[{{ block }}]", "[  line\n]")]
    // macros
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', '?') }} {{ greet(name='Zed', punct='.') }} [{{ greet() }}]", "Hi Bob! Hi Al? Hi Zed. [Hi !]")]
    [InlineData("{% macro f(k) %}{% if k > 0 %}{{ k }}{{ f(k - 1) }}{% endif %}{% endmacro %}{{ f(4) }}", "4321")]
    [InlineData("{% set y = 'before' %}{% macro show() %}{{ y }}{% endmacro %}{% set y = 'after' %}{{ show() }}", "after")]
    [InlineData("{% macro wrap(x) %}[{{ x }}]{% endmacro %}{{ messages | map(attribute='role') | map('upper') | join(',') }} {{ wrap(wrap('x')) }}", "SYSTEM,USER,ASSISTANT,USER [[x]]")]
    [InlineData("{% macro m() %}{% set local = 1 %}{{ local }}{% endmacro %}{{ m() }}{{ local is defined }}", "1False")]
    // globals
    [InlineData("{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(5, 0, -2) | list }} {{ range(0) | list }}", "[0, 1, 2] [1, 2, 3] [5, 3, 1] []")]
    [InlineData("{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", "{'a': 1, 'b': 'x'} 1")]
    // comments
    [InlineData("a{# a comment #}b{# another\non two lines #}c", "abc")]
    public void Runs_as_python_jinja(string template, string expected) => Assert.Equal(expected, Jinja.Render(template));

    [Fact]
    public void Raise_exception_is_an_error_with_the_templates_message_alone() =>
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...",
            Jinja.Error("{% if true %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"));

    [Theory]
    [InlineData("{% for a, b in [[1, 2], [3]] %}{% endfor %}", "test: line 1, column 8: not enough values to unpack (expected 2, got 1)")]
    [InlineData("{% set a, b = 1, 2, 3 %}", "test: line 1, column 8: too many values to unpack (expected 2)")]
    [InlineData("{% for x in n %}{% endfor %}", "test: line 1, column 4: 'int' object is not iterable")]
    [InlineData("{% set x = 5 %}{% set x.y = 1 %}", "test: line 1, column 23: cannot set an attribute of 'x': only a namespace() has settable attributes")]
    [InlineData("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "test: line 1, column 34: macro 'm' takes not more than 1 argument(s)")]
    [InlineData("{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "test: line 1, column 34: macro 'm' takes no keyword argument 'b'")]
    [InlineData("{{ range(1000000) | length }}", "test: line 1, column 4: range() of 1000000 items is more than the limit of 100000")]
    [InlineData("{{ range(0, 10, 0) }}", "test: line 1, column 4: range() step must not be zero")]
    [InlineData("{{ namespace(1) }}", "test: line 1, column 4: namespace(): expected a dict, got int")]
    public void A_statement_that_cannot_run_is_a_one_line_error(string template, string message) => Assert.Equal(message, Jinja.Error(template));

    [Theory]
    [InlineData("{% break %}", "test: line 1, column 4: '{% break %}' outside a loop")]
    [InlineData("{% for x in items %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", "test: line 1, column 39: '{% continue %}' outside a loop")]
    [InlineData("{% macro m(a=1, b) %}{% endmacro %}", "test: line 1, column 17: a parameter without a default follows one with a default")]
    [InlineData("{% set 1 = 2 %}", "test: line 1, column 8: expected a name, found '1'")]
    [InlineData("{% set none = 2 %}", "test: line 1, column 8: cannot assign to 'none'")]
    [InlineData("{% for x in items recursive %}{% endfor %}", "test: line 1, column 19: recursive loops are not supported")]
    public void A_statement_that_does_not_parse_is_a_one_line_error(string template, string message) => Assert.Equal(message, Jinja.Error(template));

    [Fact]
    public void Macros_that_recurse_without_end_are_an_error_not_a_crash()
    {
        var error = Jinja.Error("{% macro f(k) %}{{ f(k + 1) }}{% endmacro %}{{ f(0) }}");
        Assert.Equal("test: the template nests too deeply (recursive macros or values nested in themselves)", error);
    }

    [Fact]
    public void A_long_expression_chain_renders()
    {
        var chain = string.Join(" + ", Enumerable.Repeat("1", 300));
        Assert.Equal("300", Jinja.Render("{{ " + chain + " }}"));
    }

    [Fact]
    public void The_generation_tag_of_transformers_renders_its_body() =>
        Assert.Equal("a b c", Jinja.Render("a {% generation %}b{% endgeneration %} c"));
}
