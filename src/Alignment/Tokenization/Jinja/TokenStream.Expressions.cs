using System.Globalization;

namespace Alignment.Tokenization.Jinja;

/// <summary>The expression grammar of <see cref="TokenStream"/>, lowest precedence first.</summary>
internal sealed partial class TokenStream
{
    public Expr ParseExpression(bool withCondition = true)
    {
        Expr value = ParseOr();
        if (withCondition && AcceptName("if"))
        {
            Expr condition = ParseOr();
            Expr? otherwise = AcceptName("else") ? ParseExpression() : null;
            return new ConditionalExpr(condition, value, otherwise, value.Line);
        }
        return value;
    }

    Expr ParseOr()
    {
        Expr left = ParseAnd();
        while (AcceptName("or"))
            left = new BinaryExpr("or", left, ParseAnd(), left.Line);
        return left;
    }

    Expr ParseAnd()
    {
        Expr left = ParseNot();
        while (AcceptName("and"))
            left = new BinaryExpr("and", left, ParseNot(), left.Line);
        return left;
    }

    Expr ParseNot()
    {
        int at = Line;
        return AcceptName("not") ? new UnaryExpr("not", ParseNot(), at) : ParseCompare();
    }

    static readonly string[] Comparisons = ["==", "!=", "<", "<=", ">", ">="];

    Expr ParseCompare()
    {
        Expr left = ParseMath1();
        while (true)
        {
            string? op = Comparisons.FirstOrDefault(Peek);
            if (op is not null)
            {
                _position++;
                left = new BinaryExpr(op, left, ParseMath1(), left.Line);
            }
            else if (AcceptName("in"))
            {
                left = new BinaryExpr("in", left, ParseMath1(), left.Line);
            }
            else if (PeekName("not") && _position + 1 < tokens.Count && tokens[_position + 1] is { Kind: TokenKind.Name, Text: "in" })
            {
                _position += 2;
                left = new UnaryExpr("not", new BinaryExpr("in", left, ParseMath1(), left.Line), left.Line);
            }
            else
            {
                return left;
            }
        }
    }

    Expr ParseBinary(Func<Expr> next, params string[] ops)
    {
        Expr left = next();
        while (ops.FirstOrDefault(Peek) is { } op)
        {
            _position++;
            left = new BinaryExpr(op, left, next(), left.Line);
        }
        return left;
    }

    Expr ParseMath1() => ParseBinary(ParseConcat, "+", "-");

    Expr ParseConcat() => ParseBinary(ParseMath2, "~");

    Expr ParseMath2() => ParseBinary(ParsePow, "*", "/", "//", "%");

    Expr ParsePow() => ParseBinary(ParseUnary, "**");

    Expr ParseUnary()
    {
        int at = Line;
        if (Accept("-"))
            return new UnaryExpr("-", ParseUnary(), at);
        if (Accept("+"))
            return ParseUnary();
        Expr value = ParsePostfix(ParsePrimary());
        while (true)
        {
            if (Accept("|"))
            {
                var (name, args, kwargs, filterLine) = ParseFilter();
                value = new FilterExpr(value, name, args, kwargs, filterLine);
            }
            else if (AcceptName("is"))
            {
                bool negated = AcceptName("not");
                int testLine = Line;
                string name = ExpectName();
                var args = new List<Expr>();
                if (Peek("("))
                    args = ParseArguments().Args;
                else if (_position < tokens.Count && tokens[_position].Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || _position < tokens.Count && tokens[_position].Kind == TokenKind.Name && !PeekName("and") && !PeekName("or") && !PeekName("else") && !PeekName("if"))
                    args.Add(ParsePostfix(ParsePrimary()));
                value = new TestExpr(value, name, args, negated, testLine);
            }
            else
            {
                return value;
            }
        }
    }

    Expr ParsePrimary()
    {
        if (_position >= tokens.Count)
            throw Error("expected an expression");
        Token token = tokens[_position++];
        switch (token.Kind)
        {
            case TokenKind.String:
                string text = token.Text;
                while (_position < tokens.Count && tokens[_position].Kind == TokenKind.String)
                    text += tokens[_position++].Text;   // adjacent literals join, as in Python
                return new Literal(JinjaText.Template(text), token.Line);
            case TokenKind.Integer:
                return new Literal(long.Parse(token.Text, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Float:
                return new Literal(double.Parse(token.Text, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new Literal(true, token.Line),
                    "false" or "False" => new Literal(false, token.Line),
                    "none" or "None" => new Literal(null, token.Line),
                    _ => new NameExpr(token.Text, token.Line),
                };
        }
        switch (token.Text)
        {
            case "(":
                if (Accept(")"))
                    return new ListExpr([], IsTuple: true, token.Line);
                Expr first = ParseExpression();
                if (Accept(")"))
                    return first;
                var items = new List<Expr> { first };
                while (Accept(",") && !Peek(")"))
                    items.Add(ParseExpression());
                Expect(")");
                return new ListExpr(items, IsTuple: true, token.Line);
            case "[":
                var list = new List<Expr>();
                while (!Accept("]"))
                {
                    if (list.Count > 0)
                        Expect(",");
                    if (Accept("]"))
                        break;
                    list.Add(ParseExpression());
                }
                return new ListExpr(list, IsTuple: false, token.Line);
            case "{":
                var pairs = new List<(Expr, Expr)>();
                while (!Accept("}"))
                {
                    if (pairs.Count > 0)
                        Expect(",");
                    if (Accept("}"))
                        break;
                    Expr key = ParseExpression();
                    Expect(":");
                    pairs.Add((key, ParseExpression()));
                }
                return new DictExpr(pairs, token.Line);
        }
        _position--;
        throw Error("expected an expression");
    }

    Expr ParsePostfix(Expr value)
    {
        while (true)
        {
            int at = Line;
            if (Accept("."))
            {
                value = _position < tokens.Count && tokens[_position].Kind == TokenKind.Integer
                    ? new ItemExpr(value, new Literal(long.Parse(tokens[_position++].Text, CultureInfo.InvariantCulture), at), at)
                    : new AttributeExpr(value, ExpectName(), at);
            }
            else if (Accept("["))
            {
                Expr? start = Peek(":") ? null : ParseExpression();
                if (Accept(":"))
                {
                    Expr? stop = Peek(":") || Peek("]") ? null : ParseExpression();
                    Expr? step = Accept(":") && !Peek("]") ? ParseExpression() : null;
                    Expect("]");
                    value = new SliceExpr(value, start, stop, step, at);
                }
                else
                {
                    Expect("]");
                    value = new ItemExpr(value, start!, at);
                }
            }
            else if (Peek("("))
            {
                var (args, kwargs) = ParseArguments();
                value = new CallExpr(value, args, kwargs, at);
            }
            else
            {
                return value;
            }
        }
    }

    (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        Expect("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Accept(")"))
        {
            if (args.Count + kwargs.Count > 0)
                Expect(",");
            if (Accept(")"))
                break;
            if (_position + 1 < tokens.Count && tokens[_position].Kind == TokenKind.Name && tokens[_position + 1] is { Kind: TokenKind.Operator, Text: "=" })
            {
                string name = tokens[_position].Text;
                _position += 2;
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                args.Add(ParseExpression());
            }
        }
        return (args, kwargs);
    }
}
