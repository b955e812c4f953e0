namespace Alignment.Tokenization.Jinja;

/// <summary>An expression: evaluates to a template value (see <see cref="JinjaValues"/>).</summary>
internal abstract class Expr(int line)
{
    public int Line { get; } = line;

    public abstract object? Eval(JinjaContext context);
}

internal sealed class Literal(object? value, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) => value;
}

internal sealed class NameExpr(string name, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) => context.Lookup(name);
}

internal sealed class ListExpr(List<Expr> items, bool IsTuple, int line) : Expr(line)
{
    public bool IsTuple { get; } = IsTuple;

    public override object? Eval(JinjaContext context) => items.Select(item => item.Eval(context)).ToList();
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> pairs, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context)
    {
        var dict = new JinjaDict();
        foreach (var (key, value) in pairs)
            dict[JinjaValues.Str(key.Eval(context)).Value] = value.Eval(context);
        return dict;
    }
}

internal sealed class AttributeExpr(Expr target, string name, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) => JinjaBuiltins.Attribute(target.Eval(context), name);
}

internal sealed class ItemExpr(Expr target, Expr index, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) => JinjaBuiltins.Item(target.Eval(context), index.Eval(context));
}

internal sealed class SliceExpr(Expr target, Expr? start, Expr? stop, Expr? step, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) =>
        JinjaBuiltins.Slice(target.Eval(context), start?.Eval(context), stop?.Eval(context), step?.Eval(context));
}

internal sealed class CallExpr(Expr target, List<Expr> args, List<(string Name, Expr Value)> kwargs, int line) : Expr(line)
{
    public Expr Target => target;

    public (List<object?> Args, Dictionary<string, object?> Kwargs) Arguments(JinjaContext context) =>
        (args.Select(a => a.Eval(context)).ToList(), kwargs.ToDictionary(k => k.Name, k => k.Value.Eval(context)));

    public override object? Eval(JinjaContext context)
    {
        object? callee = target.Eval(context);
        var (values, named) = Arguments(context);
        return callee switch
        {
            JinjaFunction function => function.Call(values, named),
            JinjaMacro macro => macro.Invoke(values, named),
            JinjaUndefined undefined => throw new JinjaError($"'{undefined.Name}' is undefined and cannot be called"),
            _ => throw new JinjaError($"{JinjaValues.TypeName(callee)} is not callable"),
        };
    }
}

internal sealed class FilterExpr(Expr target, string name, List<Expr> args, List<(string, Expr)> kwargs, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) => Apply(context, name, target.Eval(context), args, kwargs);

    static object? Apply(JinjaContext context, string name, object? value, List<Expr> args, List<(string Name, Expr Value)> kwargs) =>
        JinjaBuiltins.Filter(context, name, value, args.Select(a => a.Eval(context)).ToList(), kwargs.ToDictionary(k => k.Name, k => k.Value.Eval(context)));

    /// <summary>A <c>{% set x | f %}</c> or <c>{% filter f %}</c> chain applied in order, each error naming its filter's line.</summary>
    public static object? ApplyChain(JinjaContext context, object? value, List<(string Name, List<Expr> Args, List<(string, Expr)> Kwargs, int Line)> filters)
    {
        foreach (var (filter, args, kwargs, at) in filters)
            value = JinjaContext.At(at, () => Apply(context, filter, value, args, kwargs));
        return value;
    }
}

internal sealed class TestExpr(Expr target, string name, List<Expr> args, bool negated, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context)
    {
        object? value = name is "defined" or "undefined" && target is NameExpr or AttributeExpr or ItemExpr
            ? EvalLenient(context)
            : target.Eval(context);
        return JinjaBuiltins.Test(name, value, args.Select(a => a.Eval(context)).ToList()) != negated;
    }

    /// <summary>For <c>is defined</c>: an attribute of an undefined value is undefined too, not an error.</summary>
    object? EvalLenient(JinjaContext context)
    {
        try
        {
            return target.Eval(context);
        }
        catch (JinjaError)
        {
            return new JinjaUndefined("?");
        }
    }
}

internal sealed class UnaryExpr(string op, Expr operand, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context)
    {
        object? value = operand.Eval(context);
        return op switch
        {
            "not" => !JinjaValues.Truthy(value),
            _ => value switch
            {
                long l => (object)(-l),
                double d => -d,
                _ => throw new JinjaError($"cannot negate {JinjaValues.TypeName(value)}"),
            },
        };
    }
}

internal sealed class BinaryExpr(string op, Expr left, Expr right, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context)
    {
        object? a = left.Eval(context);
        switch (op)
        {
            case "and":
                return JinjaValues.Truthy(a) ? right.Eval(context) : a;
            case "or":
                return JinjaValues.Truthy(a) ? a : right.Eval(context);
        }
        object? b = right.Eval(context);
        return op switch
        {
            "==" => JinjaValues.AreEqual(a, b),
            "!=" => !JinjaValues.AreEqual(a, b),
            "<" => JinjaValues.Compare(a, b) < 0,
            "<=" => JinjaValues.Compare(a, b) <= 0,
            ">" => JinjaValues.Compare(a, b) > 0,
            ">=" => JinjaValues.Compare(a, b) >= 0,
            "in" => JinjaValues.Contains(b, a),
            "~" => JinjaValues.Str(a) + JinjaValues.Str(b),
            _ => JinjaValues.Arithmetic(op, a, b),
        };
    }
}

internal sealed class ConditionalExpr(Expr condition, Expr then, Expr? otherwise, int line) : Expr(line)
{
    public override object? Eval(JinjaContext context) =>
        JinjaValues.Truthy(condition.Eval(context)) ? then.Eval(context) : otherwise is null ? new JinjaUndefined("else") : otherwise.Eval(context);
}
