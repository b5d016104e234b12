namespace Kiln.Chat.Jinja;

/// <summary>
/// The argument values of a call, filter or test, and the checks Python makes of them: a function names its
/// parameters (<see cref="Allow"/>), then reads each by position or keyword (<see cref="Get"/>).
/// </summary>
internal sealed class Args(IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> keywords)
{
    public static readonly Args None = new([], new Dictionary<string, object?>());

    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyDictionary<string, object?> Keywords { get; } = keywords;

    /// <summary>Refuses more positional arguments than <paramref name="parameters"/>, and keywords not among them.</summary>
    public void Allow(string function, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw new JinjaError($"{function}() takes at most {parameters.Length} argument{(parameters.Length == 1 ? "" : "s")} ({Positional.Count} given)");
        foreach (var name in Keywords.Keys)
        {
            var at = Array.IndexOf(parameters, name);
            if (at < 0) throw new JinjaError($"{function}() got an unexpected keyword argument '{name}'");
            if (at < Positional.Count) throw new JinjaError($"{function}() got multiple values for argument '{name}'");
        }
    }

    /// <summary>Whether parameter <paramref name="name"/> (at <paramref name="index"/>) was given.</summary>
    public bool Has(int index, string name) => index < Positional.Count || Keywords.ContainsKey(name);

    /// <summary>Parameter <paramref name="name"/> (at <paramref name="index"/>), or <paramref name="otherwise"/> when not given.</summary>
    public object? Get(int index, string name, object? otherwise = null) =>
        index < Positional.Count ? Positional[index] : Keywords.TryGetValue(name, out var value) ? value : otherwise;

    /// <summary>Parameter <paramref name="name"/>, which <paramref name="function"/> needs.</summary>
    public object? Required(int index, string name, string function) =>
        Has(index, name) ? Get(index, name) : throw new JinjaError($"{function}() missing required argument '{name}'");

    /// <summary>The positional arguments from <paramref name="index"/> on, as a new call's (map's and select's extra arguments).</summary>
    public Args From(int index) => new(Positional.Skip(index).ToList(), Keywords);
}
