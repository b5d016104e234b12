using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Kernels;
using Kiln.Weights;

namespace Kiln.Transforms.Compile;

/// <summary>Settings of <see cref="UseKilnLinearTransform"/>.</summary>
public sealed record UseKilnLinearConfig : TransformConfig
{
    /// <summary>
    /// Hand a weight loaded as a concatenation of whole checkpoint tensors of its own dtype (the fused
    /// q/k/v and gate/up, f32 or read as stored bf16/f16) to the kernel as those tensors, read where the file is mapped, instead of a concatenated
    /// copy. Off by default: the copies cost memory (+0.45 GB on the 1.25 GB model of
    /// docs/performance.md) but live on huge pages, and the file's 4 KiB pages streamed slower, which
    /// took decode from 0.96-1.05 to 0.83-0.86 of the bound when the machine's bandwidth was high.
    /// </summary>
    public bool WeightsInPieces { get; init; }

    /// <summary>
    /// What the kernel reads a 16-bit checkpoint's linear weights and embedding table as: "stored"
    /// (bf16 or f16 as in the file: half the memory and half the bytes streamed per token of f32) or
    /// "f32" (upcast at load, as before). Float32 checkpoints read f32 either way.
    /// </summary>
    public string WeightDtype { get; init; } = Stored;

    public const string Stored = "stored", F32 = "f32";
}

/// <summary>
/// compile: every float32 <c>linear</c> over a weight parameter becomes <c>kiln_linear</c> (plus an
/// <c>add</c> for a bias), which runs on Kiln's own kernel (Kernels/LinearKernel) instead of ORT's
/// MatMul. That kernel streams each weight once per product from where it is mapped, the access
/// pattern that reaches the machine's read bandwidth in one-token decode steps, and needs no
/// pre-packed copy of the weights (docs/performance.md). With <see cref="UseKilnLinearConfig.WeightDtype"/>
/// "stored" (the default), weights of a bf16 or f16 checkpoint stay in that dtype
/// (<see cref="StoredWeightDtype"/>). With <see cref="UseKilnLinearConfig.WeightsInPieces"/>,
/// a weight loaded as the concatenation of whole checkpoint tensors of its own dtype (the post-load
/// fusions' q/k/v and gate/up recipes) is handed to the kernel as those tensors, in order, so the fused
/// product reads the mapped file and no concatenated copy is made. Disable the transform to run ORT's
/// MatMul (over weights upcast to f32).
/// </summary>
public sealed class UseKilnLinearTransform : Transform<UseKilnLinearConfig>
{
    public override string Name => "use_kiln_linear";

    public override Stage Stage => Stage.Compile;

    protected override int Rewrite(ModelGraph graph, UseKilnLinearConfig config, TransformContext context)
    {
        if (config.WeightDtype is not (UseKilnLinearConfig.Stored or UseKilnLinearConfig.F32))
            throw new KilnException($"{Name}.weight_dtype: '{config.WeightDtype}' is neither {UseKilnLinearConfig.Stored} nor {UseKilnLinearConfig.F32}");
        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        var linears = graph.Nodes
            .Where(n => n.Op == "linear" && parameters.ContainsKey(n.Inputs[1])
                && n.Inputs[0].DType == DType.F32 && n.Inputs[1].DType == DType.F32)
            .ToList();
        if (config.WeightDtype == UseKilnLinearConfig.Stored && context.Checkpoint is { } checkpoint) StoredWeightDtype.Apply(graph, linears, checkpoint);
        // Per weight, so that a weight read by several linears is split once.
        var piecesOf = new Dictionary<Value, List<Value>?>(ReferenceEqualityComparer.Instance);
        foreach (var linear in linears)
        {
            var weight = parameters[linear.Inputs[1]];
            if (!piecesOf.TryGetValue(weight.Value, out var pieces))
            {
                pieces = config.WeightsInPieces ? Pieces(graph, weight, context.Checkpoint) : null;
                piecesOf[weight.Value] = pieces;
            }
            var product = graph.CreateNode("kiln_linear", [linear.Inputs[0], .. pieces ?? [weight.Value]], nameHint: linear.Output.Name);
            LinearReplacement.Replace(graph, linear, product);
        }
        graph.EraseNodes(linears);
        foreach (var (weight, pieces) in piecesOf)
        {
            if (pieces != null) graph.RemoveParameter(parameters[weight]);
        }
        return linears.Count;
    }

    // The checkpoint tensors a concat(0) recipe joins, as parameters loaded without steps (views of the
    // file); null when the weight is not such a concatenation of whole [n, k] tensors of its own dtype.
    private static List<Value>? Pieces(ModelGraph graph, ParameterSpec weight, Checkpoint? checkpoint)
    {
        var recipe = weight.Recipe;
        if (checkpoint is null || recipe.Sources.Count is < 2 or > LinearKernel.MaxWeights || recipe.Steps is not [ConcatStep { Dim: 0 }])
            return null;
        var width = weight.Value.Shape[1].Size;
        var tensors = new List<TensorInfo>();
        foreach (var source in recipe.Sources)
        {
            if (!checkpoint.Tensors.TryGetValue(source, out var tensor) || tensor.DType != weight.Value.DType || tensor.Shape is not [_, var k] || k != width)
                return null;
            tensors.Add(tensor);
        }
        // Each piece under the tensor's own name, listed where the fused weight was.
        var taken = graph.ValuesByName();
        if (tensors.Any(t => taken.ContainsKey(t.Name))) return null;
        var at = graph.Parameters.IndexOf(weight);
        var pieces = new List<Value>();
        foreach (var tensor in tensors) pieces.Add(graph.InsertParameter(at++, tensor.Name, tensor.DType, tensor.Shape, LoadRecipe.FromSource(tensor.Name)).Value);
        return pieces;
    }
}
