namespace Kiln.Chat.Jinja;

/// <summary>
/// A variable, attribute or item that does not exist, as Jinja's default Undefined: it prints as nothing,
/// is false, iterates as empty and has length 0; doing anything else with it (arithmetic, ordering, an
/// attribute, an item, a call) is an error with <see cref="Message"/>.
/// </summary>
internal sealed class Undefined(string message)
{
    public string Message { get; } = message;

    public JinjaError Error() => new(Message);
}
