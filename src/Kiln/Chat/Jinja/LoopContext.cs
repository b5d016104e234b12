namespace Kiln.Chat.Jinja;

/// <summary>The loop variable of a {% for %}: loop.index, loop.first, loop.last, loop.length and the rest.</summary>
internal sealed class LoopContext(IReadOnlyList<object?> items)
{
    /// <summary>The current iteration, from 0.</summary>
    public int Index0 { get; set; }

    /// <summary>loop.name; an attribute it lacks is undefined.</summary>
    public object? Get(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 < items.Count - 1 ? items[Index0 + 1] : new Undefined("there is no next item"),
        "depth" => 1L,
        "depth0" => 0L,
        "cycle" => new TemplateFunction("loop.cycle", Cycle),
        _ => new Undefined($"'LoopContext' has no attribute {ValueText.Repr(name)}"),
    };

    private object? Cycle(Args args)
    {
        if (args.Keywords.Count > 0) throw new JinjaError("loop.cycle() takes no keyword arguments");
        if (args.Positional.Count == 0) throw new JinjaError("loop.cycle() needs at least one value");
        return args.Positional[Index0 % args.Positional.Count];
    }
}
