namespace Alignment.Tokenization.Jinja;

/// <summary>
/// The tokens of one tag, parsed as expressions with Jinja's grammar and precedence: conditional expressions, <c>or</c>,
/// <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>, <c>~</c>, <c>* / // %</c>, <c>**</c>, unary signs, then
/// postfix attribute, item, slice and call, filters and <c>is</c> tests.
/// </summary>
internal sealed partial class TokenStream(List<Token> tokens, int line)
{
    int _position;

    public int Line => _position < tokens.Count ? tokens[_position].Line : line;

    public bool Peek(string op) => _position < tokens.Count && tokens[_position] is { Kind: TokenKind.Operator } t && t.Text == op;

    bool PeekName(string name) => _position < tokens.Count && tokens[_position] is { Kind: TokenKind.Name } t && t.Text == name;

    public bool Accept(string op)
    {
        if (!Peek(op))
            return false;
        _position++;
        return true;
    }

    public bool AcceptName(string name)
    {
        if (!PeekName(name))
            return false;
        _position++;
        return true;
    }

    void Expect(string op)
    {
        if (!Accept(op))
            throw Error($"expected '{op}'");
    }

    public string ExpectName(string? name = null)
    {
        if (_position < tokens.Count && tokens[_position] is { Kind: TokenKind.Name } t && (name is null || t.Text == name))
        {
            _position++;
            return t.Text;
        }
        throw Error(name is null ? "expected a name" : $"expected '{name}'");
    }

    public void ExpectEnd()
    {
        if (_position < tokens.Count)
            throw Error("expected the end of the tag");
    }

    JinjaException Error(string message) =>
        new($"{message}, found {(_position < tokens.Count ? $"'{tokens[_position].Text}'" : "the end of the tag")}", Line);

    public List<(string Name, Expr? Default)> ParseParameters()
    {
        var parameters = new List<(string, Expr?)>();
        Expect("(");
        while (!Accept(")"))
        {
            if (parameters.Count > 0)
                Expect(",");
            if (Accept(")"))
                break;
            string name = ExpectName();
            parameters.Add((name, Accept("=") ? ParseExpression() : null));
        }
        return parameters;
    }

    public List<(string Name, List<Expr> Args, List<(string, Expr)> Kwargs, int Line)> ParseFilterChain(bool leadingPipe = true)
    {
        var filters = new List<(string, List<Expr>, List<(string, Expr)>, int)>();
        while (leadingPipe ? Accept("|") : filters.Count == 0 || Accept("|"))
            filters.Add(ParseFilter());
        return filters;
    }

    (string Name, List<Expr> Args, List<(string, Expr)> Kwargs, int Line) ParseFilter()
    {
        int at = Line;
        string name = ExpectName();
        var (args, kwargs) = Peek("(") ? ParseArguments() : ([], []);
        return (name, args, kwargs, at);
    }

    /// <summary>An expression, or several separated by commas (a tuple), as on the right of <c>set</c>.</summary>
    public Expr ParseTupleOrExpression()
    {
        Expr first = ParseExpression();
        if (!Peek(","))
            return first;
        var items = new List<Expr> { first };
        while (Accept(",") && _position < tokens.Count)
            items.Add(ParseExpression());
        return new ListExpr(items, IsTuple: true, first.Line);
    }
}
