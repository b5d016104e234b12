using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Models;

/// <summary>
/// A family's model as one config.json describes it: the facts the runtime needs, the checkpoint's
/// tensors and the weights read from them (<see cref="Layout"/>), and the forward pass in reference
/// form, traced into the IR.
/// </summary>
public abstract class ModelDefinition
{
    public abstract ModelFacts Facts { get; }

    public abstract WeightLayout Layout { get; }

    /// <summary>The inputs, logits type and facts of <see cref="Trace"/>'s graph, without tracing it.</summary>
    public ModelSignature Signature => ModelSignature.Of(Facts);

    /// <summary>The reference graph: the signature's inputs, the forward pass, the logits; the facts ride along.</summary>
    public ModelGraph Trace(OpRegistry registry)
    {
        var t = new Tracer(registry);
        var inputs = Signature.Inputs.ToDictionary(i => i.Name, i => t.Input(i.Name, i.Type.DType, [.. i.Type.Shape.Dims]));
        t.Output(Forward(t, inputs["input_ids"], inputs["position_ids"]));
        t.Graph.Model = Facts;
        return t.Graph;
    }

    /// <summary>The logits [batch, seq, vocab] for token ids at their positions, written with the weights of <see cref="Layout"/>.</summary>
    protected abstract Tensor Forward(Tracer t, Tensor inputIds, Tensor positionIds);
}
