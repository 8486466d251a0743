using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization.Templates;

namespace Distill.Mesh.Modeling.Tests.Tokenization.Templates;

public class JinjaTemplateTests
{
    // The variables every snippet below sees.
    private const string Variables =
        "{\"s\": \"  Hello World  \", \"n\": 7, \"f\": 2.5, \"l\": [3, 1, 2], \"d\": {\"b\": 1, \"a\": [1, 2], \"c\": null}, \"e\": \"\", "
        + "\"u\": \"na\u00efve \ud83d\ude00 ok\", \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}, "
        + "{\"role\": \"user\", \"content\": \"bye\"}], \"t\": true, \"none\": null}";

    private static readonly DateTime Now = new(2025, 3, 14, 15, 9, 26);

    private static string Render(string source, string variables = Variables, RenderLimits? limits = null) =>
        JinjaTemplate.Parse(source, limits).Render(JsonNode.Parse(variables)!.AsObject().ToDictionary(p => p.Key, p => p.Value), Now).Text;

    // Expected strings are what Python's Jinja2 3.1.6 renders for the same source and variables, in
    // transformers' environment (trim_blocks, lstrip_blocks, loop controls, json.dumps as tojson,
    // strftime_now at 2025-03-14 15:09:26): whitespace control, literals and reprs, slicing and
    // code points, filters, tests, loops, macros, namespaces, arithmetic and string methods.
    [Theory]
    [InlineData("a\n  {% if t %}\n    x\n  {% endif %}\nb", "a\n    x\nb")]
    [InlineData("a  {%- if t %} x {% endif -%}  b", "a x b")]
    [InlineData("  {%+ if t %}x{% endif %}|", "  x|")]
    [InlineData("{% for i in l %}\n{{ i }}\n{% endfor %}", "3\n1\n2\n")]
    [InlineData("{# c #}\n  {# d -#}   z", "z")]
    [InlineData("{{ s|trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}", "Hello World|Hello World|Hello World  |  Hello World|hi")]
    [InlineData("{{ s|length }} {{ l|length }} {{ d|length }} {{ u|length }} {{ u[7] }} {{ u[:8] }} {{ u[::-1] }}", "15 3 3 10   na\u00efve 😀  ko 😀 ev\u00efan")]
    [InlineData("{{ l[::-1] }} {{ l[1:] }} {{ l[-1] }} {{ l[:-1] }} {{ l[5] }} {{ 'abc'[1:2] }} {{ l[::2] }}", "[2, 1, 3] [1, 2] 2 [3, 1]  b [3, 2]")]
    [InlineData("{{ d }} {{ l }} {{ none }} {{ t }} {{ f }} {{ 1e-07 }} {{ 3.0 }} {{ 1e16 }} {{ 123456789.125 }} {{ 0.1+0.2 }} {{ (1, 'a') }} {{ ('x',) }}", "{'b': 1, 'a': [1, 2], 'c': None} [3, 1, 2] None True 2.5 1e-07 3.0 1e+16 123456789.125 0.30000000000000004 (1, 'a') ('x',)")]
    [InlineData("{{ d|tojson }} {{ d|tojson(indent=2) }} {{ u|tojson }} {{ [] |tojson(indent=4) }} {{ {}|tojson }} {{ 'a\"b\\\\c\\n\\x01'|tojson }} {{ d|tojson(sort_keys=true) }}", "{\"b\": 1, \"a\": [1, 2], \"c\": null} {\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"c\": null\n} \"na\u00efve 😀 ok\" [] {} \"a\\\"b\\\\c\\n\\u0001\" {\"a\": [1, 2], \"b\": 1, \"c\": null}")]
    [InlineData("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(', ') }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }}", "hi, bye 1")]
    [InlineData("{{ l|sort }} {{ l|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ l|max }} {{ l|min }} {{ l|sum }} {{ l|first }} {{ l|last }} {{ ['a','A','b']|unique|list }}", "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] 3 1 6 3 2 ['a', 'b']")]
    [InlineData("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'x\\ny\\r\\nz'.splitlines() }}", "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a,b', 'c'] ['x', 'y', 'z']")]
    [InlineData("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x','lo')) }} {{ 'aaa'.replace('a','b',2) }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }}", "True True bba Hello World Hello HIhi")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k in d %}{{ k }}{% endfor %} {% for k, v in d|items %}{{ loop.index }}{{ k }}{% endfor %} {{ d.keys()|list }} {{ d.get('zz', 5) }}", "b=1;a=[1, 2];c=None; bac 1b2a3c ['b', 'a', 'c'] 5")]
    [InlineData("{% for i in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a','b') }}|{% endfor %}", "103TrueFalse31a|212FalseFalse332b|321FalseTrue31a|")]
    [InlineData("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", "01345")]
    [InlineData("{% for i in [] %}x{% else %}empty{% endfor %} {% for i in l if i > 1 %}{{ i }}{{ loop.last }}{% endfor %}", "empty 3False2True")]
    [InlineData("{% set x = 1 %}{% for i in l %}{% set x = i %}{{ x }}{% endfor %}{{ x }}", "3121")]
    [InlineData("{% set ns = namespace(a=1, b='q') %}{% for i in l %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}", "7q")]
    [InlineData("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(2, 'c') }}{{ m(a=3, b=4) }}", "[1B][2c][34]")]
    [InlineData("{% set blk %}  inner {{ n }}\n{% endset %}[{{ blk }}]{% set t2 | upper %}abc{% endset %}{{ t2 }}", "[  inner 7\n]ABC")]
    [InlineData("{{ n ~ 'x' ~ none }} {{ n + f }} {{ n // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ n / 2 }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 7 % 2 }}", "7xNone 9.5 3 -4 2 3.5 1024 ababab [1, 2] 1")]
    [InlineData("{{ 'yes' if t else 'no' }} {{ 'yes' if none }}| {{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 'a' in 'cat' }} {{ 2 in l }} {{ 'b' in d }} {{ 'z' not in d }} {{ not t }}", "yes | True False True True True True False")]
    [InlineData("{{ x is defined }} {{ n is defined }} {{ none is none }} {{ s is string }} {{ d is mapping }} {{ l is iterable }} {{ n is iterable }} {{ n is number }} {{ t is boolean }} {{ f is float }} {{ n is integer }} {{ n is odd }} {{ n is divisibleby 7 }} {{ t is true }} {{ false is false }} {{ n is not none }} {{ l is sequence }}", "False True True True True True False True True True True True True True True True True")]
    [InlineData("{{ x|default('dflt') }} {{ e|default('dflt') }} {{ e|default('dflt', true) }} {{ none|default('z') }} {{ x|string }}| {{ n|string }} {{ l|join }} {{ l|join('-') }} {{ '5'|int + 1 }} {{ '2.5'|float }} {{ 'x'|int }} {{ 3.7|int }} {{ 2.5|round }} {{ 3.14159|round(2) }}", "dflt  dflt None | 7 312 3-1-2 6 2.5 0 3 2.0 3.14")]
    [InlineData("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'abc'|center(9) }}|{{ 'one two  three'|wordcount }}|{{ 'x'|capitalize }}|{{ '<a>&'|e }}", "a\n  b\n\n  c|  a\n  b|   abc   |3|X|&lt;a&gt;&amp;")]
    [InlineData("{{ '%s and %d' % ('x', 3) }} {{ '%05.1f|%-4s|' % (3.14159, 'ab') }} {{ '%s'|format(5) }} {{ '{} x' }}", "x and 3 003.1|ab  | 5 {} x")]
    [InlineData("{{ [1, 2, 3][1] }} {{ {'a': 1}['a'] }} {{ {'a': {'b': [5]}}.a.b[0] }} {{ msgs[0].role }} {{ msgs.0.content }} {{ (l|list)[0] }}", "2 1 5 user hi 3")]
    [InlineData("{{ strftime_now('%d %b %Y %H:%M:%S %A %B %j %p %I %y %-d %e %a %m %%') }}", "14 Mar 2025 15:09:26 Friday March 073 PM 03 25 14 14 Fri 03 %")]
    [InlineData("{{ l|reverse|list }} {{ 'abc'|reverse }} {{ l|batch(2)|list }} {{ d|dictsort }} {{ ['a','b']|map('upper')|list }} {{ l|select('odd')|list }} {{ l|reject('even')|list }}", "[2, 1, 3] cba [[3, 1], [2]] [('a', [1, 2]), ('b', 1), ('c', None)] ['A', 'B'] [3, 1] [3, 1]")]
    [InlineData("{{ 'abc' == 'abc' }} {{ 1 == 1.0 }} {{ true == 1 }} {{ [1,2] == [1,2] }} {{ {'a':1,'b':2} == {'b':2,'a':1} }} {{ none == x }} {{ x == x }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}", "True True True True True False True True True")]
    [InlineData("{{ '\\u00e9\\t\\x41' }} {{ \"it's\" }} {{ 'say \"hi\"' }} {{ 'a' 'b' }} {{ ['it\\'s', \"q\\\"\"] }} {{ {'k': 'v\\n'} }}", "\u00e9\tA it's say \"hi\" ab [\"it's\", 'q\"'] {'k': 'v\\n'}")]
    [InlineData("{%- for m in msgs -%}\n  {{- m.role }}:{{ m['content'] -}}\n{%- endfor %}", "user:hiassistant:youser:bye")]
    [InlineData("{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}{% if false %}{% elif none %}{% else %}E{% endif %}", "bigE")]
    [InlineData("{{ l.index(2) }} {{ l.count(3) }} {{ 'banana'.count('a') }} {{ 'banana'.find('n') }} {{ '12'.isdigit() }} {{ 'a1'.isalpha() }}", "2 1 3 2 True False")]
    [InlineData("{{ d.c is none }} {{ d.zz is defined }} {{ d['zz'] is defined }} {{ msgs[9] is defined }} {{ none.x is defined }}", "True False False False False")]
    [InlineData("{{ 1 if t }}{{ 2 if false }}|{{ ('a' if t else 'b') ~ 'c' }}|{{ -n|abs }}|{{ -(n) }}|{{ +n }}|{{ not none and t }}|{{ none or 'fb' }}|{{ 0 or '' }}|{{ 'x' and 'y' }}", "1|ac|7|-7|7|True|fb||y")]
    [InlineData("{{ 'a b'|replace(' ', '_') }} {{ 'Hello'|lower|upper }} {{ l|map('string')|join('+') }} {{ msgs|map(attribute='role')|unique|list }}", "a_b HELLO 3+1+2 ['user', 'assistant']")]
    [InlineData("{{ 1e3 }} {{ 1.5e-5 }} {{ 2.0e20 }} {{ 100.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 10/4 }} {{ 12345678901234567.0 }} {{ -0.0 }}", "1000.0 1.5e-05 2e+20 100.0 0.0001 1e-05 0.3333333333333333 2.5 1.2345678901234568e+16 -0.0")]
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% for x, y in [[1, 2], [3, 4]] %}{{ x * y }}{% endfor %}", "12(1, 2)212")]
    [InlineData("{{ dict(a=1, b=2) }} {{ namespace(x=1).x }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }}", "{'a': 1, 'b': 2} 1 [0, 1, 2] [1, 4, 7] [5, 3, 1]")]
    public void Render_Snippet_MatchesPythonJinja(string source, string expected)
    {
        Assert.Equal(expected, Render(source));
    }

    [Theory]
    [InlineData("{% if x %}", 1, "missing '{% endif %}'")]
    [InlineData("a\n{{ 1 + }}", 2, "expected an expression, found '}}'")]
    [InlineData("{% for x in l %}{% endif %}", 1, "'{% endif %}'")]
    [InlineData("{% include 'x.html' %}", 1, "unknown or unsupported tag 'include'")]
    [InlineData("{{ 'abc }}", 1, "string literal not closed")]
    [InlineData("{% break %}", 1, "'break' outside a loop")]
    [InlineData("\n\n{# never closed", 3, "comment not closed")]
    public void Parse_BadSource_NamesLineAndProblem(string source, int line, string problem)
    {
        var error = Assert.Throws<TemplateSyntaxException>(() => JinjaTemplate.Parse(source));

        Assert.Equal(line, error.Line);
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void RaiseException_CarriesTheTemplatesMessage()
    {
        var error = Assert.Throws<TemplateRaisedException>(() => Render("{% if n > 5 %}{{ raise_exception('n is ' ~ n ~ ', too big') }}{% endif %}"));

        Assert.Equal("n is 7, too big", error.TemplateMessage);
        Assert.Equal("the chat template raised an error: n is 7, too big", error.Message);
    }

    [Theory]
    [InlineData("{{ missing.attr }}", "'missing' is undefined")]
    [InlineData("{{ d.zz.x }}", "'dict object' has no attribute 'zz'")]
    [InlineData("{{ 'a' + 1 }}", "unsupported operand type(s) for +: 'str' and 'int'")]
    [InlineData("{{ l|nosuchfilter }}", "no filter named 'nosuchfilter'")]
    [InlineData("{{ l.append(4) }}", "'append' of 'list' object is unsafe")]
    [InlineData("{% set x = 1 %}{% set x.y = 2 %}", "which is not a namespace()")]
    [InlineData("{{ 1 // 0 }}", "division or modulo by zero")]
    public void Render_InvalidOperation_IsATemplateErrorNamingIt(string source, string message)
    {
        var error = Assert.Throws<TemplateException>(() => Render(source));

        Assert.Contains(message, error.Message);
        Assert.StartsWith("line 1: ", error.Message);
    }

    [Fact]
    public void Undefined_PrintsEmptyAndIsFalseButKeyLookupsOnDictsDoNotFail()
    {
        Assert.Equal("|False|0|True", Render("{{ nothing }}|{{ nothing is defined }}|{{ nothing|length }}|{{ d.missing is undefined }}"));
    }

    [Theory]
    [InlineData("{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}", "loop iterations")]
    [InlineData("{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}", "exceeds 1000000 characters")]
    [InlineData("{{ 'x' * 2000000 }}", "exceeds 1000000 characters")]
    [InlineData("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro calls nested deeper than 64")]
    [InlineData("{{ range(10000000)|length }}", "range() of 10000000 items")]
    public void Render_RunawayTemplate_StopsAtItsBound(string source, string message)
    {
        var limits = RenderLimits.Default with { MaxOutputChars = 1_000_000 };

        var error = Assert.Throws<TemplateLimitException>(() => Render(source, limits: limits));

        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Parse_DeeplyNestedSource_IsRefusedNotAStackOverflow()
    {
        var source = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";

        var error = Assert.Throws<TemplateSyntaxException>(() => JinjaTemplate.Parse(source));

        Assert.Contains("nested deeper than 200", error.Message);
    }

    [Fact]
    public void Generation_BlockSpansAreRecordedOnTheOutput()
    {
        var rendering = JinjaTemplate.Parse("{% for m in msgs %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}")
            .Render(JsonNode.Parse(Variables)!.AsObject().ToDictionary(p => p.Key, p => p.Value), Now);

        Assert.Equal("<user>hi<assistant>yo</s><user>bye", rendering.Text);
        Assert.Equal([new TextSpan(19, 6)], rendering.GenerationSpans);
        Assert.Equal("yo</s>", rendering.Text.Substring(19, 6));
    }

    [Theory]
    [InlineData(1e-7, "1e-07")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(18.5, "18.5")]
    [InlineData(-2.5e-10, "-2.5e-10")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(123456789012345678.0, "1.2345678901234568e+17")]
    public void FloatRepr_IsPythons(double value, string expected)
    {
        Assert.Equal(expected, PyValues.FloatRepr(value));
    }
}
