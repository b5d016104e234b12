using Kiln.Graph;

namespace Kiln.Models;

/// <summary>
/// What the runtime and the snapshot cache rely on of a model's exported graph, known from config.json
/// alone: its facts, its inputs and the type of its logits output. Every family's trace declares its
/// inputs and facts from this, so a restored snapshot can be checked against the model without
/// tracing it again.
/// </summary>
public sealed record ModelSignature(
    ModelFacts Facts,
    IReadOnlyList<(string Name, TensorType Type)> Inputs,
    TensorType Logits)
{
    /// <summary>Token ids and their positions in, logits over the vocabulary out, for every position of a batch of sequences.</summary>
    public static ModelSignature Of(ModelFacts facts)
    {
        var tokens = Shape.Of(Dim.Sym("batch"), Dim.Sym("seq"));
        return new ModelSignature(facts,
            [("input_ids", new TensorType(DType.I64, tokens)), ("position_ids", new TensorType(DType.I64, tokens))],
            new TensorType(DType.F32, Shape.Of(Dim.Sym("batch"), Dim.Sym("seq"), Dim.Of(facts.VocabSize))));
    }
}
