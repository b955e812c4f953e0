namespace Alignment.Tokenization.Jinja;

/// <summary>
/// Parses the parts of a template into statements — <c>if</c>/<c>elif</c>/<c>else</c>, <c>for</c> (with a filter and
/// <c>else</c>), <c>set</c> (to names, namespace attributes or a block), <c>macro</c>, <c>call</c>, <c>filter</c>,
/// <c>break</c>, <c>continue</c>, <c>do</c> and transformers' <c>generation</c> — whose expressions <see cref="TokenStream"/> parses.
/// </summary>
internal sealed class JinjaParser
{
    readonly List<Part> _parts;
    int _index;

    JinjaParser(List<Part> parts) => _parts = parts;

    public static List<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Lex(source));
        var (body, end) = parser.ParseBody();
        if (end is not null)
            throw new JinjaException($"unexpected '{{% {end.Value.Name} %}}'", end.Value.Tokens.Line);
        return body;
    }

    /// <summary>Statements up to one of <paramref name="ends"/> (returned with its remaining tokens) or the end of the template.</summary>
    (List<Node> Body, (string Name, TokenStream Tokens)? End) ParseBody(params string[] ends)
    {
        var body = new List<Node>();
        while (_index < _parts.Count)
        {
            Part part = _parts[_index++];
            switch (part.Kind)
            {
                case PartKind.Text:
                    body.Add(new TextNode(part.Text));
                    break;
                case PartKind.Output:
                    var output = new TokenStream(part.Tokens, part.Line);
                    body.Add(new OutputNode(output.ParseExpression(), part.Line));
                    output.ExpectEnd();
                    break;
                default:
                    var tokens = new TokenStream(part.Tokens, part.Line);
                    string name = tokens.ExpectName();
                    if (ends.Contains(name))
                        return (body, (name, tokens));
                    body.Add(ParseStatement(name, tokens, part.Line));
                    break;
            }
        }
        if (ends.Length > 0)
            throw new JinjaException($"the template ends before '{{% {ends[^1]} %}}'", _parts.Count > 0 ? _parts[^1].Line : 1);
        return (body, null);
    }

    Node ParseStatement(string name, TokenStream tokens, int line)
    {
        switch (name)
        {
            case "if":
            {
                var branches = new List<(Expr, List<Node>)>();
                Expr condition = tokens.ParseExpression();
                tokens.ExpectEnd();
                while (true)
                {
                    var (body, end) = ParseBody("elif", "else", "endif");
                    branches.Add((condition, body));
                    if (end!.Value.Name == "elif")
                    {
                        condition = end.Value.Tokens.ParseExpression();
                        end.Value.Tokens.ExpectEnd();
                        continue;
                    }
                    List<Node>? otherwise = null;
                    if (end.Value.Name == "else")
                    {
                        end.Value.Tokens.ExpectEnd();
                        (otherwise, end) = ParseBody("endif");
                    }
                    end!.Value.Tokens.ExpectEnd();
                    return new IfNode(branches, otherwise, line);
                }
            }
            case "for":
            {
                var targets = new List<string> { tokens.ExpectName() };
                while (tokens.Accept(","))
                    targets.Add(tokens.ExpectName());
                tokens.ExpectName("in");
                Expr iterable = tokens.ParseExpression(withCondition: false);
                Expr? filter = tokens.AcceptName("if") ? tokens.ParseExpression(withCondition: false) : null;
                if (tokens.AcceptName("recursive"))
                    throw new JinjaException("recursive loops are not supported", line);
                tokens.ExpectEnd();
                var (body, end) = ParseBody("else", "endfor");
                List<Node>? otherwise = null;
                if (end!.Value.Name == "else")
                {
                    end.Value.Tokens.ExpectEnd();
                    (otherwise, end) = ParseBody("endfor");
                }
                end!.Value.Tokens.ExpectEnd();
                return new ForNode(targets, iterable, filter, body, otherwise, line);
            }
            case "set":
            {
                var targets = new List<(string Name, string? Attribute)>();
                do
                {
                    string target = tokens.ExpectName();
                    targets.Add(tokens.Accept(".") ? (target, tokens.ExpectName()) : (target, null));
                } while (tokens.Accept(","));
                if (tokens.Accept("="))
                {
                    Expr value = tokens.ParseTupleOrExpression();
                    tokens.ExpectEnd();
                    return new SetNode(targets, value, line);
                }
                var filters = tokens.ParseFilterChain();
                tokens.ExpectEnd();
                if (targets.Count != 1 || targets[0].Attribute is not null)
                    throw new JinjaException("a block set assigns one name", line);
                var (content, end) = ParseBody("endset");
                end!.Value.Tokens.ExpectEnd();
                return new BlockSetNode(targets[0].Name, content, filters);
            }
            case "macro":
            {
                string macroName = tokens.ExpectName();
                var parameters = tokens.ParseParameters();
                tokens.ExpectEnd();
                var (body, end) = ParseBody("endmacro");
                end!.Value.Tokens.ExpectEnd();
                return new MacroNode(macroName, parameters, body, line);
            }
            case "call":
            {
                var parameters = tokens.Peek("(") ? tokens.ParseParameters() : [];
                Expr call = tokens.ParseExpression();
                tokens.ExpectEnd();
                var (body, end) = ParseBody("endcall");
                end!.Value.Tokens.ExpectEnd();
                return new CallBlockNode(call, parameters, body, line);
            }
            case "filter":
            {
                var filters = tokens.ParseFilterChain(leadingPipe: false);
                tokens.ExpectEnd();
                var (body, end) = ParseBody("endfilter");
                end!.Value.Tokens.ExpectEnd();
                return new FilterBlockNode(filters, body, line);
            }
            case "generation":
            {
                // transformers' extension marking assistant text: renders its body.
                tokens.ExpectEnd();
                var (body, end) = ParseBody("endgeneration");
                end!.Value.Tokens.ExpectEnd();
                return new IfNode([(new Literal(true, line), body)], null, line);
            }
            case "break":
                tokens.ExpectEnd();
                return new LoopControlNode(isBreak: true, line);
            case "continue":
                tokens.ExpectEnd();
                return new LoopControlNode(isBreak: false, line);
            case "do":
                Expr expression = tokens.ParseExpression();
                tokens.ExpectEnd();
                return new DoNode(expression, line);
            default:
                throw new JinjaException($"unknown statement '{name}'", line);
        }
    }
}
