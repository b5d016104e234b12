using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.PostLoadFusion;

/// <summary>Settings of <see cref="QuantizeWeightsTransform"/>.</summary>
public sealed record QuantizeWeightsConfig : TransformConfig
{
    /// <summary>"none" (no change), or a <see cref="QuantScheme"/> name: "int8", "int4", "int4_sym".</summary>
    public string Scheme { get; init; } = "none";

    /// <summary>Whether the output layer (the product that gives the logits) is quantized too.</summary>
    public bool OutputLayer { get; init; } = true;

    /// <summary>
    /// Whether the embedding table is quantized. Not supported: its gather reads float rows, so true is
    /// refused rather than ignored. A tied output layer is quantized from a copy of the table.
    /// </summary>
    public bool Embedding { get; init; }
}

/// <summary>
/// quantize_weights (post_load_fusion): weight-only quantization as load recipes. Every float32
/// <c>linear</c> over a weight parameter (the output layer unless <see cref="QuantizeWeightsConfig.OutputLayer"/>
/// is false) becomes <c>quantized_linear</c>, plus an <c>add</c> for a bias, which stays float. The
/// weight's recipe gets a final <c>quantize(scheme)</c>, and loses its casts to f32: widening is exact,
/// so quantizing the bf16/f16 source directly gives the same blocks without a float copy. A weight that
/// other nodes also read (a tied embedding) keeps its float parameter, and the products read a new one,
/// NAME.SCHEME. A weight the checkpoint stores in blocks (a GGUF Q8_0 or Q4_0 tensor, read through a
/// <c>dequantize</c> step) keeps them whatever the scheme, "none" included: its recipe loses the dequantize
/// and the product reads the stored blocks, never a float copy.
/// </summary>
public sealed class QuantizeWeightsTransform : Transform<QuantizeWeightsConfig>
{
    public override string Name => "quantize_weights";

    public override Stage Stage => Stage.PostLoadFusion;

    protected override int Rewrite(ModelGraph graph, QuantizeWeightsConfig config, TransformContext context)
    {
        if (config.Embedding)
            throw new KilnException($"{Name}.embedding: quantizing the embedding table is not supported (its gather reads float rows); leave it false");
        QuantScheme? configured = null;
        if (config.Scheme != "none")
        {
            configured = QuantSchemes.TryParse(config.Scheme, out var parsed)
                ? parsed
                : throw new KilnException($"{Name}.scheme: '{config.Scheme}' is not one of none, {QuantSchemes.All}");
        }

        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        // Each float linear over a weight parameter, with the blocks its weight will be: the stored ones, else the configured scheme's.
        var linears = new List<(Node Linear, QuantScheme Scheme, LoadRecipe Recipe)>();
        foreach (var node in graph.Nodes)
        {
            if (node.Op != "linear" || !parameters.TryGetValue(node.Inputs[1], out var weight)
                || node.Inputs[0].DType != DType.F32 || node.Inputs[1].DType != DType.F32 || node.Inputs[1].Shape is not { Rank: 2, IsFullyKnown: true }
                || (!config.OutputLayer && node.Output.IsGraphOutput))
                continue;
            if (StoredBlocks.Packed(weight.Recipe) is var (stored, storedScheme)) linears.Add((node, storedScheme, stored));
            else if (configured is { } scheme) linears.Add((node, scheme, Quantized(weight.Recipe, scheme)));
        }
        var chosen = new HashSet<Node>(linears.Select(l => l.Linear), ReferenceEqualityComparer.Instance);

        var packedOf = new Dictionary<Value, Value>(ReferenceEqualityComparer.Instance);
        foreach (var (linear, scheme, recipe) in linears)
        {
            var weight = linear.Inputs[1];
            if (!packedOf.TryGetValue(weight, out var packed))
            {
                packed = Pack(graph, parameters[weight], scheme, recipe, shared: weight.IsGraphOutput || weight.Users.Any(r => !chosen.Contains(r)));
                packedOf[weight] = packed;
            }
            var product = graph.CreateNode("quantized_linear", [linear.Inputs[0], packed],
                new Dictionary<string, AttributeValue> { ["scheme"] = new StringAttribute(scheme.Name()) }, nameHint: linear.Output.Name);
            LinearReplacement.Replace(graph, linear, product);
        }
        graph.EraseNodes(chosen);
        return linears.Count;
    }

    // The recipe quantizing a float weight: its casts to f32 dropped (widening is exact, so the blocks are the same), then quantize.
    private static LoadRecipe Quantized(LoadRecipe recipe, QuantScheme scheme) =>
        new(recipe.Sources, [.. recipe.Steps.Where(s => s is not CastStep { To: DType.F32 }), new QuantizeStep(scheme)]);

    // The packed parameter of a weight, made by <paramref name="recipe"/>: beside it as NAME.SCHEME when other nodes
    // still read the float one, else the weight itself, in its place under its name.
    private static Value Pack(ModelGraph graph, ParameterSpec weight, QuantScheme scheme, LoadRecipe recipe, bool shared)
    {
        var (n, k) = (weight.Value.Shape[0].Size, weight.Value.Shape[1].Size);
        long[] shape = [n, scheme.RowBytes(k)];
        if (shared) return graph.InsertParameter(graph.Parameters.IndexOf(weight) + 1, $"{weight.Name}.{scheme.Name()}", DType.U8, shape, recipe).Value;
        // Only the linears replaced here read it, and they are erased at the end: until then their recorded
        // input type is stale, which nothing looks at. (Removing the float parameter first is refused: it is still read.)
        weight.Recipe = recipe;
        weight.Value.Type = new TensorType(DType.U8, Shape.Of(shape));
        return weight.Value;
    }
}
