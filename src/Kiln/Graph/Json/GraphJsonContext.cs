using System.Text.Json.Serialization;

namespace Kiln.Graph.Json;

/// <summary>Source-generated System.Text.Json metadata for the graph's JSON form.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    UseStringEnumConverter = true,
    RespectRequiredConstructorParameters = true,
    RespectNullableAnnotations = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(GraphDocument))]
[JsonSerializable(typeof(string))]
public sealed partial class GraphJsonContext : JsonSerializerContext;
