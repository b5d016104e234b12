namespace Kiln.Compile;

/// <summary>
/// One dimension of a graph input or output: a fixed size, or a symbolic name ("batch", "seq")
/// that ORT binds at run time. Converts implicitly from a number or a string, so shapes read
/// as <c>["batch", 4]</c>.
/// </summary>
public readonly record struct OnnxDim
{
    private OnnxDim(long? value, string? symbol) { Value = value; Symbol = symbol; }

    /// <summary>The fixed size, or null for a symbolic dimension.</summary>
    public long? Value { get; }

    /// <summary>The symbolic name, or null for a fixed dimension.</summary>
    public string? Symbol { get; }

    public static OnnxDim Fixed(long value) =>
        value >= 0 ? new(value, null) : throw new ArgumentOutOfRangeException(nameof(value), value, "a fixed dimension must be >= 0");

    public static OnnxDim Symbolic(string name) =>
        string.IsNullOrEmpty(name) ? throw new ArgumentException("a symbolic dimension needs a name", nameof(name)) : new(null, name);

    public static implicit operator OnnxDim(long value) => Fixed(value);

    public static implicit operator OnnxDim(string name) => Symbolic(name);

    public override string ToString() => Symbol ?? Value!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
