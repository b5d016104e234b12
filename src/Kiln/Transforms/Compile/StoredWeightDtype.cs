using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.Compile;

/// <summary>
/// Keeps a 16-bit checkpoint's weights 16-bit for Kiln's Linear kernel. A parameter whose recipe casts
/// bf16 or f16 sources (all of one dtype) to f32, and that only the given linears (as their weight) and
/// embedding lookups read, loses that cast and takes the stored dtype: it is mapped or concatenated as
/// stored, half the bytes of f32 to hold and to stream per token. Each lookup then casts its rows to
/// f32 after the gather, a few rows per token instead of the whole table at load. Small parameters
/// read by anything else (norm gains, biases) keep their cast.
/// </summary>
public static class StoredWeightDtype
{
    /// <summary>Rewrites every such parameter and returns how many.</summary>
    public static int Apply(ModelGraph graph, IReadOnlyCollection<Node> linears, Checkpoint checkpoint)
    {
        var kernelReads = new HashSet<Node>(linears, ReferenceEqualityComparer.Instance);
        var count = 0;
        foreach (var parameter in graph.Parameters)
        {
            var value = parameter.Value;
            if (value.Users.Count == 0 || value.IsGraphOutput) continue;
            if (!value.Users.All(n => IsWeightOf(n, value, kernelReads) || IsLookupIn(n, value))) continue;
            if (Uncast(parameter.Recipe, checkpoint) is not var (recipe, stored)) continue;
            parameter.Recipe = recipe;
            // In graph order (users are not), so that the casts' names do not depend on the graph's edit history.
            var lookups = value.Users.Where(n => n.Op == "gather").OrderBy(graph.Nodes.IndexOf).ToList();
            // Lookups are cast while the value still has its f32 type, so that their readers keep theirs.
            foreach (var lookup in lookups) CastRows(graph, lookup);
            value.Type = value.Type with { DType = stored };
            foreach (var lookup in lookups) lookup.Output.Type = lookup.Output.Type with { DType = stored };
            count++;
        }
        return count;
    }

    private static bool IsWeightOf(Node node, Value weight, HashSet<Node> kernelReads) =>
        kernelReads.Contains(node) && node.Inputs.Select((v, i) => (v, i)).All(p => !ReferenceEquals(p.v, weight) || p.i == 1);

    private static bool IsLookupIn(Node node, Value table) =>
        node.Op == "gather" && ReferenceEquals(node.Inputs[0], table) && !ReferenceEquals(node.Inputs[1], table);

    // The recipe without its cast to f32, and the dtype it then gives; null unless the sources share one
    // 16-bit dtype and that cast is the recipe's only one (the other steps keep the dtype).
    private static (LoadRecipe Recipe, DType Stored)? Uncast(LoadRecipe recipe, Checkpoint checkpoint)
    {
        var dtypes = new HashSet<DType>();
        foreach (var source in recipe.Sources)
        {
            if (!checkpoint.Tensors.TryGetValue(source, out var tensor)) return null;
            dtypes.Add(tensor.DType);
        }
        var stored = dtypes.Count == 1 ? dtypes.Single() : DType.F32;
        if (stored is not (DType.BF16 or DType.F16)) return null;
        var casts = recipe.Steps.OfType<CastStep>().ToList();
        if (casts is not [{ To: DType.F32 }]) return null;
        return (recipe with { Steps = [.. recipe.Steps.Where(s => s is not CastStep)] }, stored);
    }

    // A cast to f32 right after the lookup, read by everything that read the lookup.
    private static void CastRows(ModelGraph graph, Node lookup)
    {
        var cast = graph.CreateNode("cast", [lookup.Output], new Dictionary<string, AttributeValue> { ["to"] = DType.F32.Name() }, nameHint: lookup.Output.Name);
        graph.InsertAfter(lookup, cast);
        graph.ReplaceUses(lookup.Output, cast.Output);
    }
}
