namespace Kiln.Graph;

/// <summary>An immutable list of dimensions, compared by value.</summary>
public sealed class Shape : IEquatable<Shape>
{
    private readonly Dim[] _dims;

    public Shape(IEnumerable<Dim> dims) => _dims = dims.ToArray();

    public static Shape Scalar { get; } = new([]);

    public static Shape Of(params Dim[] dims) => new(dims);

    public static Shape Of(IEnumerable<long> sizes) => new(sizes.Select(Dim.Of));

    public int Rank => _dims.Length;

    /// <summary>Same as <see cref="Rank"/>; lets callers index from the end (<c>shape[^1]</c>).</summary>
    public int Length => _dims.Length;

    public Dim this[int index] => _dims[index];

    public IReadOnlyList<Dim> Dims => _dims;

    public bool IsFullyKnown => _dims.All(d => d.IsKnown);

    /// <summary>The sizes of a fully known shape.</summary>
    public long[] ToSizes() =>
        IsFullyKnown ? _dims.Select(d => d.Size).ToArray() : throw new InvalidOperationException($"shape {this} has symbolic dimensions");

    /// <summary>Turns a negative axis (counted from the end) into its position.</summary>
    public int NormalizeAxis(long axis)
    {
        var normalized = axis < 0 ? axis + Rank : axis;
        if (normalized < 0 || normalized >= Rank) throw new GraphException($"axis {axis} is out of range for shape {this}");
        return (int)normalized;
    }

    public Shape With(int index, Dim dim)
    {
        var dims = (Dim[])_dims.Clone();
        dims[index] = dim;
        return new Shape(dims);
    }

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);

    public override bool Equals(object? obj) => Equals(obj as Shape);

    // By value, like Equals: shapes are compared as values everywhere (op inference, pattern matching).
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var dim in _dims) hash.Add(dim);
        return hash.ToHashCode();
    }

    public override string ToString() => "[" + string.Join(", ", _dims) + "]";

    /// <summary>Parses the text form "[batch, seq, 64]".</summary>
    public static Shape Parse(string text)
    {
        var inner = text.Trim().TrimStart('[').TrimEnd(']').Trim();
        return inner.Length == 0 ? Scalar : new Shape(inner.Split(',').Select(part => Dim.Parse(part.Trim())));
    }
}
