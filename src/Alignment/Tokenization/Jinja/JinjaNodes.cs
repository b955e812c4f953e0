namespace Alignment.Tokenization.Jinja;

/// <summary>A statement: renders into the output.</summary>
internal abstract class Node
{
    public abstract void Render(JinjaContext context, JinjaText.Builder output);

    public static void RenderAll(List<Node> body, JinjaContext context, JinjaText.Builder output)
    {
        foreach (Node node in body)
            node.Render(context, output);
    }

    public static JinjaText Capture(List<Node> body, JinjaContext context)
    {
        var output = new JinjaText.Builder();
        RenderAll(body, context, output);
        return output.ToText();
    }
}

internal sealed class TextNode(string text) : Node
{
    readonly JinjaText _text = JinjaText.Template(text);

    public override void Render(JinjaContext context, JinjaText.Builder output) => output.Append(_text);
}

internal sealed class OutputNode(Expr expression, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output) =>
        output.Append(JinjaValues.Str(JinjaContext.At(line, () => expression.Eval(context))));
}

internal sealed class IfNode(List<(Expr Condition, List<Node> Body)> branches, List<Node>? otherwise, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        foreach (var (condition, body) in branches)
        {
            if (JinjaValues.Truthy(JinjaContext.At(line, () => condition.Eval(context))))
            {
                RenderAll(body, context, output);
                return;
            }
        }
        if (otherwise is not null)
            RenderAll(otherwise, context, output);
    }
}

/// <summary><c>{% break %}</c> and <c>{% continue %}</c> (transformers enables loop controls).</summary>
internal sealed class LoopControlNode(bool isBreak, int line) : Node
{
    internal sealed class Signal(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    public override void Render(JinjaContext context, JinjaText.Builder output) =>
        throw (context.InLoop ? new Signal(isBreak) : new JinjaException($"'{(isBreak ? "break" : "continue")}' outside a loop", line));
}

internal sealed class ForNode(List<string> targets, Expr iterable, Expr? filter, List<Node> body, List<Node>? otherwise, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        var items = new List<object?>();
        foreach (object? item in JinjaContext.At(line, () => JinjaValues.Iterate(iterable.Eval(context))))
        {
            if (filter is not null)
            {
                context.Push();
                Bind(context, item);
                bool keep = JinjaValues.Truthy(JinjaContext.At(line, () => filter.Eval(context)));
                context.Pop();
                if (!keep)
                    continue;
            }
            items.Add(item);
        }
        if (items.Count == 0)
        {
            if (otherwise is not null)
                RenderAll(otherwise, context, output);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            context.Push(inLoop: true);
            Bind(context, items[i]);
            context.Set("loop", JinjaValues.Loop(items, i));
            try
            {
                RenderAll(body, context, output);
            }
            catch (LoopControlNode.Signal signal) when (signal.IsBreak)
            {
                break;
            }
            catch (LoopControlNode.Signal)
            {
            }
            finally
            {
                context.Pop();
            }
        }
    }

    void Bind(JinjaContext context, object? item)
    {
        if (targets.Count == 1)
        {
            context.Set(targets[0], item);
            return;
        }
        var values = JinjaContext.At(line, () => JinjaValues.Iterate(item).ToList());
        if (values.Count != targets.Count)
            throw new JinjaException($"cannot unpack {values.Count} values into {targets.Count} names", line);
        for (int i = 0; i < targets.Count; i++)
            context.Set(targets[i], values[i]);
    }
}

internal sealed class SetNode(List<(string Name, string? Attribute)> targets, Expr value, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        object? result = JinjaContext.At(line, () => value.Eval(context));
        var values = targets.Count == 1 ? [result] : JinjaContext.At(line, () => JinjaValues.Iterate(result).ToList());
        if (values.Count != targets.Count)
            throw new JinjaException($"cannot unpack {values.Count} values into {targets.Count} names", line);
        for (int i = 0; i < targets.Count; i++)
        {
            var (name, attribute) = targets[i];
            if (attribute is null)
                context.Set(name, values[i]);
            else if (context.Lookup(name) is JinjaNamespace ns)
                ns[attribute] = values[i];
            else
                throw new JinjaException($"cannot set '{name}.{attribute}': '{name}' is not a namespace()", line);
        }
    }
}

internal sealed class BlockSetNode(string name, List<Node> body, List<(string Name, List<Expr> Args, List<(string, Expr)> Kwargs, int Line)> filters) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        context.Set(name, FilterExpr.ApplyChain(context, Capture(body, context), filters));
    }
}

internal sealed class FilterBlockNode(List<(string Name, List<Expr> Args, List<(string, Expr)> Kwargs, int Line)> filters, List<Node> body, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        object? value = FilterExpr.ApplyChain(context, Capture(body, context), filters);
        output.Append(JinjaContext.At(line, () => JinjaValues.Str(value)));
    }
}

internal sealed class DoNode(Expr expression, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output) => JinjaContext.At<object?>(line, () => expression.Eval(context));
}

internal sealed class MacroNode(string name, List<(string Name, Expr? Default)> parameters, List<Node> body, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output) =>
        context.Set(name, new JinjaMacro(name, parameters, body, context, line));
}

internal sealed class CallBlockNode(Expr call, List<(string Name, Expr? Default)> parameters, List<Node> body, int line) : Node
{
    public override void Render(JinjaContext context, JinjaText.Builder output)
    {
        if (call is not CallExpr { Target: var target } invocation)
            throw new JinjaException("{% call %} needs a macro call", line);
        var caller = new JinjaMacro("caller", parameters, body, context, line);
        object? macro = target.Eval(context);
        if (macro is not JinjaMacro m)
            throw new JinjaException("{% call %} needs a macro", line);
        var (args, kwargs) = invocation.Arguments(context);
        output.Append(JinjaContext.At(line, () => m.Invoke(args, kwargs, caller)));
    }
}

/// <summary>A macro: parameters with defaults, a body rendered in a scope of its own over the template's globals.</summary>
internal sealed class JinjaMacro(string name, List<(string Name, Expr? Default)> parameters, List<Node> body, JinjaContext defined, int line)
{
    public string Name => name;

    public JinjaText Invoke(List<object?> args, Dictionary<string, object?> kwargs, JinjaMacro? caller = null)
    {
        JinjaContext scope = defined.ForMacro();
        if (args.Count > parameters.Count)
            throw new JinjaException($"macro '{name}' takes {parameters.Count} arguments, got {args.Count}", line);
        for (int i = 0; i < parameters.Count; i++)
        {
            var (parameter, fallback) = parameters[i];
            object? value = i < args.Count ? args[i]
                : kwargs.TryGetValue(parameter, out object? named) ? named
                : fallback is not null ? fallback.Eval(scope)
                : new JinjaUndefined(parameter);
            scope.Set(parameter, value);
        }
        if (caller is not null)
            scope.Set("caller", caller);
        return Node.Capture(body, scope);
    }
}
