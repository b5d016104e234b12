namespace Kiln.Chat.Jinja;

/// <summary>Something a template can call: a global (range, namespace), a method of a value ('a'.strip), a macro.</summary>
internal sealed class TemplateFunction(string name, Func<Args, object?> body)
{
    public string Name { get; } = name;

    public object? Invoke(Args args) => body(args);
}
