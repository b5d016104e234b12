using Kiln.Graph;

namespace Kiln.Ops;

public enum AttributeKind { Int, Float, String, Ints }

/// <summary>One attribute an op accepts; a missing optional attribute takes <see cref="Default"/>.</summary>
public sealed record AttributeSpec(string Name, AttributeKind Kind, AttributeValue? Default = null)
{
    public bool Required => Default is null;

    public bool Accepts(AttributeValue value) => (Kind, value) switch
    {
        (AttributeKind.Int, IntAttribute) or (AttributeKind.Float, FloatAttribute)
            or (AttributeKind.String, StringAttribute) or (AttributeKind.Ints, IntsAttribute) => true,
        _ => false,
    };

    public static AttributeSpec Int(string name, long? defaultValue = null) =>
        new(name, AttributeKind.Int, defaultValue is { } d ? new IntAttribute(d) : null);

    public static AttributeSpec Float(string name, double? defaultValue = null) =>
        new(name, AttributeKind.Float, defaultValue is { } d ? new FloatAttribute(d) : null);

    public static AttributeSpec String(string name, string? defaultValue = null) =>
        new(name, AttributeKind.String, defaultValue is { } d ? new StringAttribute(d) : null);

    public static AttributeSpec Ints(string name) => new(name, AttributeKind.Ints);
}
