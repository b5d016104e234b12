using System.Text.Json.Serialization;
using Kiln.Weights;

namespace Kiln.Graph.Json;

/// <summary>The JSON form of a graph: plain data, versioned by <see cref="SchemaVersion"/>.</summary>
public sealed record GraphDocument(
    int SchemaVersion,
    ModelFacts? Model,
    SortedDictionary<string, string> Metadata,
    List<ValueDocument> Inputs,
    List<ParameterDocument> Parameters,
    List<BufferDocument> Buffers,
    List<NodeDocument> Nodes,
    List<string> Outputs,
    List<TransformInfo> History,
    int NameCounter = 0);

public sealed record ValueDocument(string Name, string Dtype, [property: JsonConverter(typeof(ShapeJsonConverter))] Shape Shape);

public sealed record ParameterDocument(string Name, string Dtype, long[] Shape, LoadRecipe Recipe);

/// <summary>A buffer; <see cref="Data"/> is the little-endian element bytes in base64.</summary>
public sealed record BufferDocument(string Name, string Dtype, long[] Shape, byte[] Data);

public sealed record NodeDocument(string Op, List<string> Inputs, List<ValueDocument> Outputs, SortedDictionary<string, AttributeValue> Attributes);
