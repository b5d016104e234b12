using Kiln.Graph;

namespace Kiln.Models;

/// <summary>
/// What the runtime and the snapshot cache rely on of a model's exported graph, known from config.json
/// alone: its metadata, its inputs and the type of its logits output. The family's trace declares its
/// inputs and metadata from this, so a restored snapshot can be checked against the model without
/// tracing it again.
/// </summary>
public sealed record ModelSignature(
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<(string Name, TensorType Type)> Inputs,
    TensorType Logits);
