namespace Alignment;

/// <summary>
/// Collects every bad value of an options record so that validation reports them all at once, each message naming its
/// option by the name TRL and transformers use.
/// </summary>
internal sealed class OptionErrors
{
    readonly List<string> _messages = [];

    /// <summary>Records <paramref name="message"/> unless <paramref name="valid"/>.</summary>
    public OptionErrors Check(bool valid, string message)
    {
        if (!valid)
            _messages.Add(message);
        return this;
    }

    /// <summary>Adds the problems another record found (options that compose other options).</summary>
    public OptionErrors Include(IEnumerable<string> messages)
    {
        _messages.AddRange(messages);
        return this;
    }

    /// <summary>The problems found so far.</summary>
    public IReadOnlyList<string> Messages => _messages;

    /// <summary>Throws one exception listing every problem, if there is any.</summary>
    /// <exception cref="ArgumentException">At least one value is out of range.</exception>
    public void ThrowIfAny()
    {
        if (_messages.Count == 1)
            throw new ArgumentException(_messages[0]);
        if (_messages.Count > 1)
            throw new ArgumentException($"{_messages.Count} invalid options: " + string.Join(" ", _messages));
    }
}
