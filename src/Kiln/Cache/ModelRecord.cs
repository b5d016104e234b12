using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// What a restored snapshot must agree with before it is a hit: the model of the checkpoint it is
/// restored for. A checksum only proves the entry is what was written; this proves it is a graph the
/// runtime can run for this model. Checked: the model's facts (the graph's <see cref="ModelGraph.Model"/> equals
/// what the family's description reads from config.json: vocabulary, context length, sizes, special tokens;
/// <see cref="ModelSignature"/>), the runtime signature (inputs,
/// logits output, key/value cache inputs and outputs against config.json's layer, kv-head and head-dim
/// counts) and the parameter bindings (each load recipe names checkpoint tensors and yields the
/// parameter's shape and dtype). Anything else would fail the run later (lowering, weight loading,
/// ONNX Runtime) instead of missing.
/// </summary>
public sealed class ModelRecord
{
    private const string InputIds = "input_ids";
    private const string PositionIds = "position_ids";

    private readonly Checkpoint _checkpoint;
    private readonly ModelSignature _signature;
    private readonly long _rankKvHeads;

    private ModelRecord(Checkpoint checkpoint, ModelSignature signature, long rankKvHeads) =>
        (_checkpoint, _signature, _rankKvHeads) = (checkpoint, signature, rankKvHeads);

    /// <summary>
    /// The record of <paramref name="checkpoint"/>'s model, from its config.json alone (validated here, with
    /// errors naming the file and field): a hit needs no trace of the model. <paramref name="share"/> is the
    /// tensor-parallel shard a rank's graph holds (default: the whole model).
    /// </summary>
    public static ModelRecord Of(Checkpoint checkpoint, Transforms.Sharding.TensorParallelShare? share = null)
    {
        var signature = ModelFactory.Signature(checkpoint.Config, checkpoint.ConfigPath);
        var kvHeads = share is { Ranks: > 1 } s
            ? s.KeyValueHeads(signature.Facts.KvHeads, ModelFamily.ShardedFieldsOf(signature.Facts.Family).KeyValueHeads).Count
            : signature.Facts.KvHeads;
        return new ModelRecord(checkpoint, signature, kvHeads);
    }

    /// <summary>
    /// Null when <paramref name="graph"/> fits this model, else the first disagreement. <paramref name="weightsBound"/>:
    /// the snapshot was taken after load_weights, so each recipe must already yield the parameter's dtype
    /// (before it, load_weights will still append a cast).
    /// </summary>
    public string? Mismatch(ModelGraph graph, bool weightsBound) =>
        FactsMismatch(graph) ?? SignatureMismatch(graph) ?? BindingMismatch(graph, weightsBound);

    private string? FactsMismatch(ModelGraph graph) => graph.Model is not { } found
        ? "the graph carries no model facts"
        : found.DifferenceFrom(_signature.Facts) is { } d ? $"model {d.Name} is '{Shorten(d.Found)}', the model's is '{d.Expected}'" : null;

    private string? SignatureMismatch(ModelGraph graph)
    {
        KvCacheSignature? cache;
        try
        {
            cache = KvCacheSignature.ReadFrom(graph);
        }
        catch (GraphException e)
        {
            return e.Message;
        }
        var model = _signature.Facts;
        if (cache is not null && (cache.Layers, cache.KvHeads, cache.HeadDim) != (model.Layers, _rankKvHeads, model.HeadDim))
        {
            return $"key/value cache of {cache.Layers} layers, {cache.KvHeads} kv heads of dimension {cache.HeadDim}; " +
                $"config.json has {model.Layers}, {model.KvHeads}{(_rankKvHeads == model.KvHeads ? "" : $" ({_rankKvHeads} on this rank)")} and {model.HeadDim}";
        }

        // Every input the runtime feeds, and no other: the reference's (position_ids may be gone once the cache
        // derives positions) plus the cache's.
        var expected = _signature.Inputs.ToDictionary(i => i.Name, i => i.Type, StringComparer.Ordinal);
        var required = new HashSet<string>(StringComparer.Ordinal) { InputIds };
        if (cache is null) required.Add(PositionIds);
        if (cache is not null)
        {
            var batch = expected[InputIds].Shape[0];
            var past = new TensorType(DType.F32, Shape.Of(batch, Dim.Of(cache.KvHeads), Dim.Sym(KvCacheSignature.MaxSeqSymbol), Dim.Of(cache.HeadDim)));
            for (var layer = 0; layer < cache.Layers; layer++)
            {
                expected[KvCacheSignature.PastKey(layer)] = expected[KvCacheSignature.PastValue(layer)] = past;
                required.UnionWith([KvCacheSignature.PastKey(layer), KvCacheSignature.PastValue(layer)]);
            }
            expected[KvCacheSignature.SeqLensInput] = new TensorType(DType.I32, Shape.Of(batch));
            expected[KvCacheSignature.TotalLengthInput] = new TensorType(DType.I32, Shape.Scalar);
            required.UnionWith([KvCacheSignature.SeqLensInput, KvCacheSignature.TotalLengthInput]);
        }
        foreach (var input in graph.Inputs)
        {
            if (!expected.TryGetValue(input.Name, out var type)) return $"input '{Shorten(input.Name)}' is not one the runtime feeds";
            if (input.Type != type) return $"input {input.Name} is {input.Type}, the runtime feeds {type}";
        }
        if (required.FirstOrDefault(name => graph.Inputs.All(i => i.Name != name)) is { } absent) return $"input {absent} is missing";

        // The logits first, typed as the reference's; then each layer's present key and value, as the cache's past.
        var outputs = 1 + (cache?.Layers ?? 0) * 2;
        if (graph.Outputs.Count != outputs) return $"{graph.Outputs.Count} graph outputs, the runtime reads {outputs}";
        if (graph.Outputs[0].Type != _signature.Logits) return $"logits output is {graph.Outputs[0].Type}, the model's is {_signature.Logits}";
        for (var layer = 0; cache is not null && layer < cache.Layers; layer++)
        {
            foreach (var name in new[] { KvCacheSignature.PresentKey(layer), KvCacheSignature.PresentValue(layer) })
            {
                var output = graph.Outputs.FirstOrDefault(o => o.Name == name);
                if (output is null) return $"output {name} is missing";
                if (output.Type != expected[KvCacheSignature.PastKey(layer)]) return $"output {name} is {output.Type}, the cache holds {expected[KvCacheSignature.PastKey(layer)]}";
            }
        }
        return null;
    }

    private string? BindingMismatch(ModelGraph graph, bool weightsBound)
    {
        foreach (var parameter in graph.Parameters)
        {
            var sources = new List<TensorInfo>();
            foreach (var name in parameter.Recipe.Sources)
            {
                if (!_checkpoint.Tensors.TryGetValue(name, out var tensor)) return $"parameter {parameter.Name}: source tensor '{Shorten(name)}' is not in the checkpoint";
                sources.Add(tensor);
            }
            (DType DType, long[] Shape) made;
            try
            {
                // Before load_weights, the recipe reads the tensors as binding will: with the checkpoint's storage steps.
                made = RecipeShapes.Infer(sources, weightsBound ? parameter.Recipe : WeightBinder.ReadAsStored(parameter.Recipe, sources, _checkpoint));
            }
            catch (Exception e) when (e is KilnException or ArgumentException)
            {
                return $"parameter {parameter.Name}: {e.Message}";
            }
            var shape = parameter.Value.Shape.ToSizes();
            if (!made.Shape.SequenceEqual(shape))
                return $"parameter {parameter.Name} is {RecipeShapes.Format(shape)}, its recipe gives {RecipeShapes.Format(made.Shape)}";
            var dtype = parameter.Value.DType;
            if (made.DType != dtype && (weightsBound || !RecipeExecutor.CanCast(made.DType, dtype)))
                return $"parameter {parameter.Name} is {dtype.Name()}, its recipe gives {made.DType.Name()}";
        }
        return null;
    }

    // A hostile entry's strings can be long; a miss reason stays one readable line.
    private static string Shorten(string text) =>
        new string(text.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray()) + (text.Length > 64 ? "..." : "");
}
