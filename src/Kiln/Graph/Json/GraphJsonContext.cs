using System.Text.Json.Serialization;

namespace Kiln.Graph.Json;

/// <summary>
/// Source-generated System.Text.Json metadata for the graph's JSON form. Reading is strict: unknown
/// members and duplicated properties are refused, nesting is bounded.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    UseStringEnumConverter = true,
    RespectRequiredConstructorParameters = true,
    RespectNullableAnnotations = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false,
    MaxDepth = GraphJsonContext.MaxDepth)]
[JsonSerializable(typeof(GraphDocument))]
[JsonSerializable(typeof(string))]
public sealed partial class GraphJsonContext : JsonSerializerContext
{
    /// <summary>The deepest nesting a graph file has is a recipe step inside a parameter (5 levels); 32 leaves room.</summary>
    public const int MaxDepth = 32;
}
