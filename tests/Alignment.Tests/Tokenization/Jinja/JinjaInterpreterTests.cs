using Alignment.Tokenization;

namespace Alignment.Tests.Tokenization.Jinja;

/// <summary>
/// The Jinja subset that chat templates use, one feature at a time. Each expected string is what Jinja 3 renders for the
/// same source with transformers' settings (trim_blocks, lstrip_blocks, loop controls), worked out from Jinja's and
/// Python's documented semantics.
/// </summary>
public sealed class JinjaInterpreterTests
{
    static readonly DateTimeOffset Now = new(2026, 12, 7, 9, 30, 0, TimeSpan.Zero);   // a Monday

    static readonly Dictionary<string, object?> Variables = new()
    {
        ["x"] = 1L,
        ["msgs"] = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "a" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "b" },
        },
    };

    static string Render(string source) =>
        ChatTemplate.Parse(source, variables: Variables, time: new FixedClock(Now)).RenderText([], addGenerationPrompt: false);

    [Theory]
    // arithmetic and printing as Python prints
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 'ab' * 2 }}", "3 3.5 2 1024 abab")]
    [InlineData("{{ true }} {{ none }} {{ 1.0 }} {{ 3 / 2 }} {{ [1, 'a'] }}", "True None 1.0 1.5 [1, 'a']")]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    // items, attributes and slices
    [InlineData("{{ [1, 2, 3][1:] }} {{ 'hello'[::-1] }} {{ [1, 2, 3][-1] }} {{ 'abcdef'[1:5:2] }}", "[2, 3] olleh 3 bd")]
    [InlineData("{{ {'a': {'b': 2}}['a'].b }} {{ {'a': 1}.get('z', 3) }}", "2 3")]
    [InlineData("{{ msgs[1].content }}{{ msgs[0]['role'] }}", "buser")]
    // loops
    [InlineData("{% for v in [1, 2, 3] %}{{ loop.index }}{{ loop.first }}{{ loop.last }}|{% endfor %}", "1TrueFalse|2FalseFalse|3FalseTrue|")]
    [InlineData("{% for v in 'ab' %}{{ loop.index0 }}{{ loop.revindex0 }}{{ loop.length }}{% endfor %}", "012102")]
    [InlineData("{% for v in [] %}a{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for v in range(6) if v is even %}{{ v }}{% endfor %}", "024")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in {'c': 3} | items %}{{ k }}{{ v }}{% endfor %}", "a=1;b=2;c3")]
    [InlineData("{% for v in range(10) %}{% if v == 2 %}{% continue %}{% endif %}{% if v == 4 %}{% break %}{% endif %}{{ v }}{% endfor %}", "013")]
    [InlineData("{{ range(3, -1, -1) | list }}", "[3, 2, 1, 0]")]
    [InlineData("{% for v in [1, 2] %}{{ loop.previtem is defined }}{{ loop.cycle('a', 'b') }}{% endfor %}", "FalseaTrueb")]
    // scoping: a loop's set stays in the loop, a namespace carries state out
    [InlineData("{% set y = 1 %}{% for i in [1] %}{% set y = 2 %}{% endfor %}{{ y }}", "1")]
    [InlineData("{% set ns = namespace(y=1) %}{% for i in [1] %}{% set ns.y = ns.y + 1 %}{% endfor %}{{ ns.y }}", "2")]
    [InlineData("{% set a, b = 1, 2 %}{{ b }}{{ a }}", "21")]
    [InlineData("{% set s %}a{{ 1 }}b{% endset %}{{ s | upper }}", "A1B")]
    // conditions and tests
    [InlineData("{% if false %}a{% elif 0 %}b{% elif 'x' %}c{% else %}d{% endif %}", "c")]
    [InlineData("{{ 'y' if 1 > 2 else 'n' }}{{ 'y' if false }}", "n")]
    [InlineData("{{ x is defined }}{{ nope is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [1] is iterable }}{{ 3 is odd }}{{ 6 is divisibleby 3 }}{{ 1 is not string }}", "TrueTrueTrueTrueTrueTrueTrueTrueTrue")]
    [InlineData("{{ 'b' in 'abc' }}{{ 2 not in [1, 3] }}{{ 'k' in {'k': 1} }}{{ not 0 and 1 or 2 }}", "TrueTrueTrue1")]
    [InlineData("{{ false is false }}{{ 0 is false }}{{ 1 == 1.0 }}{{ 'a' < 'b' }}", "TrueFalseTrueTrue")]
    // Undefined prints nothing, is false and iterates as empty
    [InlineData("[{{ nope }}{% if nope %}x{% endif %}{% for i in nope %}y{% endfor %}{{ nope | length }}]", "[0]")]
    // Python string methods
    [InlineData("{{ '  a b  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}", "a b|axx|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']")]
    [InlineData("{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}|{{ 'hello world'.title() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'AbC'.lower() }}{{ 'abc'.upper() }}", "TrueTrue|Hello World|bXb|abcABC")]
    // filters
    [InlineData("{{ '  v ' | trim }}|{{ [3, 1, 2] | length }}|{{ [1, 2, 3] | join('-') }}|{{ nope | default('d') }}|{{ '' | default('e', true) }}|{{ [1, 2] | first }}{{ [1, 2] | last }}|{{ '5' | int + 1 }}|{{ (1, 2) | list }}|{{ 3 | string }}", "v|3|1-2-3|d|e|12|6|[1, 2]|3")]
    [InlineData("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }}{{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | first }}{{ msgs | map(attribute='role') | list }}", "ab['user', 'assistant']")]
    [InlineData("{{ [1, 0, 2] | select | list }}{{ [1, 2, 3, 4] | reject('odd') | list }}{{ [3, 1, 2] | sort }}{{ [1, 1, 2] | unique | list }}{{ ['a', 'b'] | map('upper') | join }}", "[1, 2][2, 4][1, 2, 3][1, 2]AB")]
    [InlineData("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}", "a\n  b\n\n  c|  a\n  b")]
    [InlineData("{{ {'a': [1, 2.5, true, none], 'b': 'é\"\n'} | tojson }}", "{\"a\": [1, 2.5, true, null], \"b\": \"é\\\"\\n\"}")]
    [InlineData("{{ {'a': [1]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ]\n}")]
    [InlineData("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}{{ 'é' | tojson(ensure_ascii=true) }}", "{\"a\": 2, \"b\": 1}\"\\u00e9\"")]
    [InlineData("{% filter upper %}abc{% endfilter %}", "ABC")]
    // macros and call blocks
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', punct='?') }}", "Hi Bo! Hi Al?")]
    [InlineData("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}in{% endcall %}", "[in]")]
    // whitespace control: '-', trim_blocks, lstrip_blocks, '+', comments
    [InlineData("a  {%- if true -%}  b  {%- endif %}", "ab")]
    [InlineData("a\n{% if true %}\nb\n{% endif %}\nc", "a\nb\nc")]
    [InlineData("a\n    {% if true %}b{% endif %}|x {% if true %}y{% endif %}", "a\nb|x y")]
    [InlineData("a\n  {%+ if true %}b{% endif %}", "a\n  b")]
    [InlineData("a{# note #}b\n  {# another #}\nc{{- ' d' }}", "ab\nc d")]
    [InlineData("{{ 'x' }}\n{{ 'y' }}", "x\ny")]
    // globals
    [InlineData("{{ strftime_now('%Y-%m-%d %H:%M %b %B %a %-d') }}", "2026-12-07 09:30 Dec December Mon 7")]
    [InlineData("{% set d = dict(a=1) %}{{ d.a }}{{ x }}", "11")]
    public void Renders_as_Jinja_does(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void raise_exception_refuses_the_conversation_with_the_templates_message()
    {
        var error = Assert.Throws<ArgumentException>(() => Render("{{ raise_exception('No system role, please') }}"));
        Assert.Contains("No system role, please", error.Message);
    }

    [Theory]
    [InlineData("a\n{% for %}", "line 2")]
    [InlineData("{% if true %}a", "endif")]
    [InlineData("{{ 'unclosed }}", "never closed")]
    [InlineData("{% frobnicate %}", "unknown statement 'frobnicate'")]
    [InlineData("{% raw %}x{% endraw %}", "raw")]
    public void A_template_that_cannot_be_parsed_is_named_with_its_line(string source, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => ChatTemplate.Parse(source, name: "of 'model'"));
        Assert.Contains(expected, error.Message);
        Assert.Contains("of 'model'", error.Message);
    }

    [Theory]
    [InlineData("a\nb\n{{ x | nope }}", "no filter named 'nope'", "line 3")]
    [InlineData("{{ foo.bar }}", "'foo' is undefined", "line 1")]
    [InlineData("{{ 'a' + 1 }}", "unsupported operand types for +", "line 1")]
    [InlineData("{% for a, b in [1] %}{% endfor %}", "is not iterable", "line 1")]
    [InlineData("a\n{{ 5 | first }}", "is not iterable", "line 2")]
    [InlineData("{% break %}", "outside a loop", "line 1")]
    public void A_template_that_fails_while_rendering_names_the_line(string source, string expected, string line)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Render(source));
        Assert.Contains(expected, error.Message);
        Assert.Contains(line, error.Message);
    }

    [Fact]
    public void Content_keeps_its_provenance_through_concatenation_stripping_and_slicing()
    {
        var tokenizers = new TinyTokenizers();
        try
        {
            var tokenizer = ModelTokenizer.FromFolder(tokenizers.Folder("tok"));
            var template = ChatTemplate.Parse("{% for m in messages %}{{ ('<s>' + m.content + '</s>').strip() }}{{ m.content[2:6] }}{% endfor %}", tokenizer);
            IReadOnlyList<Segment> segments = template.Render([new("user", " <s>x</s> ")], addGenerationPrompt: false);
            Assert.Equal(
                [Segment.Special("<s>"), Segment.Content(" <s>x</s> "), Segment.Special("</s>"), Segment.Content("s>x<")],
                segments);
        }
        finally
        {
            tokenizers.Dispose();
        }
    }
}
