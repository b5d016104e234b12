namespace Kiln.Graph;

/// <summary>One dimension of a shape: a known size, or a named symbol such as <c>batch</c> or <c>seq</c>.</summary>
public readonly record struct Dim
{
    private Dim(long size, string? symbol) { Size = size; Symbol = symbol; }

    /// <summary>The size; meaningful only when <see cref="IsKnown"/>.</summary>
    public long Size { get; }

    /// <summary>The symbol's name, or null for a known size.</summary>
    public string? Symbol { get; }

    public bool IsKnown => Symbol is null;

    public static Dim Of(long size) =>
        size >= 0 ? new Dim(size, null) : throw new ArgumentOutOfRangeException(nameof(size), size, "dimension sizes are not negative");

    public static Dim Sym(string symbol) =>
        string.IsNullOrEmpty(symbol) ? throw new ArgumentException("empty symbol", nameof(symbol)) : new Dim(0, symbol);

    public static implicit operator Dim(long size) => Of(size);

    /// <summary>Parses the text form: digits are a size, anything else a symbol.</summary>
    public static Dim Parse(string text) => long.TryParse(text, out var size) ? Of(size) : Sym(text);

    public override string ToString() => Symbol ?? Size.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
