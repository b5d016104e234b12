namespace Kiln.Chat.Jinja;

/// <summary>
/// What namespace() makes: an object whose attributes {% set ns.name = value %} may change from inside a
/// loop, where a plain {% set %} only binds a name for the current iteration.
/// </summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
