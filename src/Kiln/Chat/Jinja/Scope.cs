namespace Kiln.Chat.Jinja;

/// <summary>
/// The variables visible at a point of the template: its own, then its parent's. The globals are the root;
/// the render's variables and the template's top-level {% set %}s are its child; each iteration of a loop
/// and each macro call gets a child of its own, so what they set is gone when they end (as in Jinja).
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Scope? parent = parent;
    private readonly Dictionary<string, object?> variables = new(StringComparer.Ordinal);

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope != null; scope = scope.parent)
        {
            if (scope.variables.TryGetValue(name, out value)) return true;
        }
        value = null;
        return false;
    }

    public void Set(string name, object? value) => variables[name] = value;
}
