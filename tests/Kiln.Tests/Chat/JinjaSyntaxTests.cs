using Kiln.Chat.Jinja;

namespace Kiln.Tests.Chat;

/// <summary>
/// Template text and tags, and whitespace as transformers renders it: trim_blocks, lstrip_blocks, "-" and
/// "+"; syntax errors, each one line naming the template, line and column.
/// </summary>
public sealed class JinjaSyntaxTests
{
    [Theory]
    // text and output
    [InlineData("plain text, no tags", "plain text, no tags")]
    [InlineData("{{ s }} and {{ n }}", "hello and 3")]
    [InlineData("a { b } c {{ '{{' }} %}", "a { b } c {{ %}")]
    // trim_blocks: the newline after a block tag or comment goes, not after an output
    [InlineData("{% if true %}\nyes\n{% endif %}\nafter", "yes\nafter")]
    [InlineData("{{ 'a' }}\n{{ 'b' }}\n", "a\nb")]
    [InlineData("{# comment #}\ntext", "text")]
    [InlineData("{% for m in messages %}\n{{ m.role }}\n{% endfor %}", "system\nuser\nassistant\nuser\n")]
    // lstrip_blocks: spaces and tabs before a block tag or comment on its own line go
    [InlineData("   {% if true %}a{% endif %}", "a")]
    [InlineData("x\n    {% if true %}\n    y\n    {% endif %}\nz", "x\n    y\nz")]
    [InlineData("\t {# c #}\nb", "b")]
    [InlineData("x  {% if true %}\ny{% endif %}  \n  z", "x  y  \n  z")]
    [InlineData("  {{ 'output tags keep their indent' }}", "  output tags keep their indent")]
    // the minus sign strips all whitespace on its side
    [InlineData("a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", "abc")]
    [InlineData("{{ 'a' -}}\n\n   {{ 'b' }}", "ab")]
    [InlineData("x   {{- 'y' }}", "xy")]
    [InlineData("a {#- comment -#}   b", "ab")]
    [InlineData("{%- for m in messages %}\n    {%- if m.role == 'user' %}\n        {{- m.content }}\n    {%- endif %}\n{%- endfor %}\n", "Hi thereBye")]
    // the plus sign keeps it
    [InlineData("x {%+ if true %}y{% endif +%}\nz", "x y\nz")]
    // line endings: CRLF reads as LF, and one final newline is dropped
    [InlineData("a\r\nb{% if true %}\r\nc{% endif %}\r\n", "a\nbc")]
    [InlineData("ends with two newlines\n\n", "ends with two newlines\n")]
    // the tag ends only outside brackets
    [InlineData("{{ {'a': {'b': 1}} }}", "{'a': {'b': 1}}")]
    [InlineData("{% set x = {'k': {'v': 1}} %}{{ x.k.v }}", "1")]
    public void Whitespace_as_python_jinja(string template, string expected) => Assert.Equal(expected, Jinja.Render(template));

    [Theory]
    [InlineData("{% for a in items %}", "test: line 1, column 4: '{% for %}' is not closed (expected '{% else %}' or '{% endfor %}')")]
    [InlineData("{% if n %}\n{% endfor %}", "test: line 2, column 4: unexpected '{% endfor %}'")]
    [InlineData("{% endif %}", "test: line 1, column 4: unexpected '{% endif %}'")]
    [InlineData("{{ 'a' ", "test: line 1, column 1: the tag is not closed (no '}}')")]
    [InlineData("{{ (1 }}", "test: line 1, column 7: unexpected '}'; '(' needs ')'")]
    [InlineData("{{ ) }}", "test: line 1, column 4: unexpected ')'")]
    [InlineData("{{ 'abc }}", "test: line 1, column 4: the string is not closed")]
    [InlineData("text\n{# open", "test: line 2, column 1: the comment is not closed (no '#}')")]
    [InlineData("{{ f(1, a=2, 3) }}", "test: line 1, column 14: a positional argument follows a keyword argument")]
    [InlineData("{{ n | nosuchfilter }}", "test: line 1, column 8: no filter named 'nosuchfilter'")]
    [InlineData("{{ n $ 2 }}", "test: line 1, column 6: unexpected character '$'")]
    [InlineData("{{ }}", "test: line 1, column 4: unexpected '}}'")]
    [InlineData("{% nosuchtag %}", "test: line 1, column 4: unknown tag 'nosuchtag'")]
    [InlineData("{% include 'other.jinja' %}", "test: line 1, column 4: '{% include %}' is not supported")]
    [InlineData("{% raw %}{{ x }}{% endraw %}", "test: line 1, column 4: '{% raw %}' is not supported")]
    [InlineData("{{ '\\u12' }}", "test: line 1, column 4: the string has a bad \\u escape")]
    [InlineData("line 1\nline 2 {{ n +\n }}", "test: line 3, column 2: unexpected '}}'")]
    public void A_syntax_error_is_one_line_naming_the_template_line_and_column(string template, string message) =>
        Assert.Equal(message, Jinja.Error(template));

    [Fact]
    public void Nesting_is_bounded()
    {
        var deep = new string('(', 500) + "1" + new string(')', 500);
        Assert.Equal("test: line 1, column 204: the template nests more than 200 levels deep", Jinja.Error("{{ " + deep + " }}"));
        var ifs = string.Concat(Enumerable.Repeat("{% if true %}", 300));
        Assert.StartsWith("test: line 1, column", Jinja.Error(ifs));
    }

    [Fact]
    public void The_error_names_the_template()
    {
        var error = Assert.Throws<KilnException>(() => JinjaTemplate.Parse("{{ x", "models/m/tokenizer_config.json: chat_template"));
        Assert.Equal("models/m/tokenizer_config.json: chat_template: line 1, column 1: the tag is not closed (no '}}')", error.Message);
    }
}
