using Kiln.Chat.Jinja;

namespace Kiln.Tests.Chat;

/// <summary>Filters, tojson as transformers defines it, and the Python methods templates call on strings and dicts.</summary>
public sealed class JinjaFilterTests
{
    [Theory]
    // text
    [InlineData("{{ '  hi  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ s | upper }}|{{ 'HeLLo' | lower }}|{{ 'hello wORLD' | capitalize }}", "hi|hi|HELLO|hello|Hello world")]
    [InlineData("{{ 'hello wORLD-foo (bar [baz' | title }}|{{ \"they're here\" | title }}", "Hello World-Foo (Bar [Baz|They're Here")]
    [InlineData("{{ 'a-b-c' | replace('-', '+') }}|{{ 'a-b-c' | replace('-', '', 1) }}|{{ 'abc' | replace('', '.') }}|{{ n | replace('3', 'three') }}", "a+b+c|ab-c|.a.b.c.|three")]
    [InlineData("{{ 5 | string }}{{ 5 | string | length }}|{{ none | string }}|{{ items | string }}", "51|None|[3, 1, 2]")]
    [InlineData("{{ 'line1\nline2\n\nline4' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent(2, blank=true) }}|{{ 'a\nb' | indent('> ') }}", "line1\n  line2\n\n  line4|  a\n  b|a\n  \n  b|a\n> b")]
    // sequences
    [InlineData("{{ items | length }} {{ s | length }} {{ d | length }} {{ undefined_name | length }} {{ items | count }}", "3 5 2 0 3")]
    [InlineData("{{ items | first }} {{ items | last }} {{ s | first }} {{ s | last }} {{ d | first }} [{{ empty | first }}]", "3 2 h o a []")]
    [InlineData("{{ items | join }} {{ items | join(', ') }} {{ messages | join('|', attribute='role') }}", "312 3, 1, 2 system|user|assistant|user")]
    [InlineData("{{ s | list }} {{ d | list }} {{ items | list }}", "['h', 'e', 'l', 'l', 'o'] ['a', 'b'] [3, 1, 2]")]
    [InlineData("{{ items | sort }} {{ items | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }}", "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c']")]
    [InlineData("{{ messages | sort(attribute='role') | map(attribute='content') | join(', ') }}", "Hello!, Be brief., Hi there, Bye")]
    [InlineData("{{ [1, 2, 1, 3, 'a', 'A'] | unique | list }} {{ ['a', 'A'] | unique(case_sensitive=true) | list }}", "[1, 2, 3, 'a'] ['a', 'A']")]
    [InlineData("{{ items | reverse | list }} {{ s | reverse }}", "[2, 1, 3] olleh")]
    [InlineData("{{ d | items | list }} {{ undefined_name | items | list }}", "[('a', 1), ('b', [1, 2])] []")]
    [InlineData("{{ {'b': 1, 'a': 3, 'C': 2} | dictsort }} {{ {'b': 1, 'a': 3, 'C': 2} | dictsort(by='value') }} {{ {'b': 1, 'a': 3} | dictsort(reverse=true) }}", "[('a', 3), ('b', 1), ('C', 2)] [('b', 1), ('C', 2), ('a', 3)] [('b', 1), ('a', 3)]")]
    // select, reject, map
    [InlineData("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }}", "Hi there|Bye")]
    [InlineData("{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }}", "['system', 'assistant']")]
    [InlineData("{{ messages | selectattr('role', '==', 'system') | list | length }} {{ messages | selectattr('missing') | list | length }}", "1 0")]
    [InlineData("{{ [0, 1, 2, '', none, 'x'] | select | list }} {{ items | reject('odd') | list }} {{ items | select('gt', 1) | list }} {{ ['a', 'b', 'c'] | reject('equalto', 'b') | join }}", "[1, 2, 'x'] [2] [3, 2] ac")]
    [InlineData("{{ ['a', 'b'] | map('upper') | join }} {{ items | map('string') | join('-') }} {{ messages | map(attribute='name', default='anon') | unique | list }}", "AB 3-1-2 ['anon']")]
    [InlineData("{{ [{'a': {'b': 1}}, {'a': {'b': 2}}] | map(attribute='a.b') | list }} {{ [[1, 2], [3, 4]] | map(attribute='1') | list }}", "[1, 2] [2, 4]")]
    // default
    [InlineData("{{ undefined_name | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | default('d') }}|{{ undefined_name | d('dd') }}|{{ 0 | default(5, boolean=true) }}|{{ d.missing | default('none here') }}", "d||d|None|dd|5|none here")]
    // numbers
    [InlineData("{{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ -3.9 | int }} {{ true | int }} {{ none | int }} {{ '0x1A' | int(base=16) }} {{ ' 12 ' | int }}", "43 4 0 7 3 -3 1 0 26 12")]
    [InlineData("{{ '1.5' | float }} {{ 2 | float }} {{ 'x' | float }} {{ -3 | abs }} {{ -2.5 | abs }}", "1.5 2.0 0.0 3 2.5")]
    // tojson
    [InlineData("{{ {'b': 1, 'a': [1, 2.5, 'é\"\\n'], 'c': none, 'd': true} | tojson }}", "{\"b\": 1, \"a\": [1, 2.5, \"é\\\"\\n\"], \"c\": null, \"d\": true}")]
    [InlineData("{{ {'b': 1, 'a': [1, {}], 'e': []} | tojson(indent=2) }}", "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {}\n  ],\n  \"e\": []\n}")]
    [InlineData("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }} {{ [1, 2] | tojson(separators=(',', ':')) }}", "{\"a\": 2, \"b\": 1} \"\\u00e9\" [1,2]")]
    [InlineData("{{ 'x' | tojson }} {{ 1.0 | tojson }} {{ (1, 2) | tojson }} {{ '<b>&</b>' | tojson }} {{ {'a': 1} | tojson(indent='\\t') }}", "\"x\" 1.0 [1, 2] \"<b>&</b>\" {\n\t\"a\": 1\n}")]
    [InlineData("{{ messages[:2] | tojson }}", "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi there\"}]")]
    [InlineData("{{ {'a': ['x', {'b': 'y'}]} | tojson(indent=4) }}", "{\n    \"a\": [\n        \"x\",\n        {\n            \"b\": \"y\"\n        }\n    ]\n}")]
    // methods
    [InlineData("{{ '  a b  '.strip() }}|{{ 'xxa'.lstrip('x') }}|{{ 'a\\n\\n'.rstrip('\\n') }}|{{ '\\n\\na\\n'.strip('\\n') }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|", "a b|a|a|a|a | a|")]
    [InlineData("{{ 'abc'.startswith('ab') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('bc') }} {{ 'abc'.endswith(('x', 'y')) }}", "True True True False")]
    [InlineData("{{ ' a  b c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ ' a b  c '.split(none, 1) }} {{ '<think>x</think>y'.split('</think>')[-1] }}", "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a', 'b  c '] y")]
    [InlineData("{{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ \"hello world's\".title() }} {{ 'hELLO'.capitalize() }} {{ 'aaa'.replace('a', 'b', 2) }} {{ '-'.join(['a', 'b']) }}", "AB ab Hello World'S Hello bba a-b")]
    [InlineData("{{ d.values() | list }} {{ d.items() | list }}", "[1, [1, 2]] [('a', 1), ('b', [1, 2])]")]
    public void Filters_as_python_jinja(string template, string expected) => Assert.Equal(expected, Jinja.Render(template));

    [Fact]
    public void An_unknown_filter_is_refused_when_parsing_even_where_it_would_not_run() =>
        Assert.Equal("test: line 1, column 29: no filter named 'nosuchfilter'", Jinja.Error("{% if false %}{{ messages | nosuchfilter }}{% endif %}"));

    [Theory]
    [InlineData("{{ undefined_name | tojson }}", "test: line 1, column 21: Object of type Undefined is not JSON serializable")]
    [InlineData("{{ namespace() | tojson }}", "test: line 1, column 18: Object of type Namespace is not JSON serializable")]
    [InlineData("{{ s | trim(1, 2) }}", "test: line 1, column 8: trim() takes at most 1 argument (2 given)")]
    [InlineData("{{ s | upper(x=1) }}", "test: line 1, column 8: upper() got an unexpected keyword argument 'x'")]
    [InlineData("{{ s | replace('l') }}", "test: line 1, column 8: replace() missing required argument 'new'")]
    [InlineData("{{ [1, 'a'] | sort }}", "test: line 1, column 15: '<' not supported between instances of 'int' and 'str'")]
    [InlineData("{{ n | items }}", "test: line 1, column 8: items: expected a mapping, got int")]
    [InlineData("{{ items | map('nosuchfilter') }}", "test: line 1, column 12: no filter named 'nosuchfilter'")]
    [InlineData("{{ items | select('nosuchtest') }}", "test: line 1, column 12: no test named 'nosuchtest'")]
    [InlineData("{{ items | select('e\nq') }}", "test: line 1, column 12: no test named 'e\\nq'")]
    [InlineData("{{ items | map('up\tper') }}", "test: line 1, column 12: no filter named 'up\\tper'")]
    [InlineData("{{ {}['a\nb'] | int }}", "test: line 2, column 7: 'dict object' has no attribute 'a\\nb'")]
    [InlineData("{{ \u0007 }}", "test: line 1, column 4: unexpected character '\\u0007'")]
    [InlineData("{{ s.split('') }}", "test: line 1, column 6: split(): empty separator")]
    [InlineData("{{ s.startswith(1) }}", "test: line 1, column 6: startswith(): expected a str or a tuple of str, not int")]
    [InlineData("{{ s.nosuchmethod() }}", "test: line 1, column 6: 'str object' has no attribute 'nosuchmethod'")]
    [InlineData("{{ undefined_name | int }}", "test: line 1, column 21: 'undefined_name' is undefined")]
    public void A_bad_filter_call_is_a_one_line_error(string template, string message) => Assert.Equal(message, Jinja.Error(template));

    [Fact]
    public void Strftime_now_formats_the_renders_clock()
    {
        var template = JinjaTemplate.Parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d, %H:%M:%S %p %j %y %%') }}", "test");
        var rendered = template.Render(new Dictionary<string, object?>(), now: () => new DateTime(2024, 7, 6, 14, 5, 9));
        Assert.Equal("06 Jul 2024|Saturday July 6, 14:05:09 PM 188 24 %", rendered);
    }

    [Fact]
    public void Strftime_now_without_a_clock_is_today()
    {
        var before = DateTime.Now.ToString("yyyy-MM-dd");
        var rendered = JinjaTemplate.Parse("{{ strftime_now('%Y-%m-%d') }}", "test").Render(new Dictionary<string, object?>());
        Assert.Contains(rendered, new[] { before, DateTime.Now.ToString("yyyy-MM-dd") });
    }

    [Fact]
    public void Strftime_now_refuses_a_code_it_does_not_know() =>
        Assert.Equal("test: line 1, column 4: strftime_now(): format code '%Q' is not supported", Jinja.Error("{{ strftime_now('%Q') }}"));
}
