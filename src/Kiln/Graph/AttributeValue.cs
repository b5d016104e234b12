using System.Text.Json.Serialization;

namespace Kiln.Graph;

/// <summary>A typed node attribute: an integer, a float, a string or a list of integers.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(IntAttribute), "int")]
[JsonDerivedType(typeof(FloatAttribute), "float")]
[JsonDerivedType(typeof(StringAttribute), "string")]
[JsonDerivedType(typeof(IntsAttribute), "ints")]
public abstract record AttributeValue
{
    public static implicit operator AttributeValue(long value) => new IntAttribute(value);
    public static implicit operator AttributeValue(double value) => new FloatAttribute(value);
    public static implicit operator AttributeValue(string value) => new StringAttribute(value);
    public static implicit operator AttributeValue(long[] value) => new IntsAttribute(value);
}

public sealed record IntAttribute(long Value) : AttributeValue
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public sealed record FloatAttribute(double Value) : AttributeValue
{
    // "R" keeps the exact double, so printing and parsing round-trip.
    public override string ToString() => Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}

public sealed record StringAttribute(string Value) : AttributeValue
{
    public override string ToString() => System.Text.Json.JsonSerializer.Serialize(Value, Json.GraphJsonContext.Default.String);
}

public sealed record IntsAttribute(long[] Value) : AttributeValue
{
    public bool Equals(IntsAttribute? other) => other is not null && Value.AsSpan().SequenceEqual(other.Value);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in Value) hash.Add(item);
        return hash.ToHashCode();
    }

    public override string ToString() => "[" + string.Join(", ", Value) + "]";
}
