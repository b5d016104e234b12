using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Graph.Json;

/// <summary>Writes a shape as a JSON array whose entries are numbers (sizes) or strings (symbols).</summary>
public sealed class ShapeJsonConverter : JsonConverter<Shape>
{
    public override Shape Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("a shape must be an array");
        var dims = new List<Dim>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            dims.Add(reader.TokenType switch
            {
                JsonTokenType.Number => reader.TryGetInt64(out var size) && size >= 0 ? Dim.Of(size) : throw new JsonException("a dimension size must be a non-negative 64-bit integer"),
                JsonTokenType.String => reader.GetString() is { Length: > 0 } symbol ? Dim.Sym(symbol) : throw new JsonException("a symbolic dimension must be a non-empty string"),
                _ => throw new JsonException("a dimension must be a number or a string"),
            });
        }
        return new Shape(dims);
    }

    public override void Write(Utf8JsonWriter writer, Shape value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var dim in value.Dims)
        {
            if (dim.IsKnown) writer.WriteNumberValue(dim.Size); else writer.WriteStringValue(dim.Symbol);
        }
        writer.WriteEndArray();
    }
}
