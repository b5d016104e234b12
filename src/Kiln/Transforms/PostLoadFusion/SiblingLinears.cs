using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Transforms.PostLoadFusion;

/// <summary>
/// Fuses sibling projections: <c>linear</c> nodes over the same input whose weights are the checkpoint's
/// <c>PREFIX.MEMBER.weight</c> (e.g. q_proj, k_proj, v_proj) become one <c>linear</c> over a new parameter
/// <c>PREFIX.FUSED.weight</c> whose recipe concatenates the members' sources along the output dimension,
/// followed by one <c>split</c> of the last axis into the members' outputs. Only specs and recipes change, never weight data.
/// </summary>
public static class SiblingLinears
{
    /// <summary>Fuses every complete group of <paramref name="members"/> and returns how many were fused.</summary>
    public static int Fuse(ModelGraph graph, IReadOnlyList<string> members, string fused)
    {
        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        var byWeightName = graph.Nodes
            .Where(n => n.Op == "linear" && n.Outputs.Count == 1 && parameters.ContainsKey(n.Inputs[1]))
            .GroupBy(n => n.Inputs[1].Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var suffix = $".{members[0]}.weight";
        var groups = byWeightName.Keys
            .Where(name => name.EndsWith(suffix, StringComparison.Ordinal))
            .SelectMany(name => Groups(name[..^suffix.Length], members, byWeightName))
            .ToList();

        var fusedCount = 0;
        foreach (var (prefix, linears) in groups)
        {
            if (TryFuse(graph, parameters, prefix, linears, fused)) fusedCount++;
        }
        if (fusedCount > 0) RemoveUnreadParameters(graph, groups.SelectMany(g => g.Linears).SelectMany(n => n.Inputs.Skip(1)));
        return fusedCount;
    }

    private sealed record Group(string Prefix, IReadOnlyList<Node> Linears);

    // One group per linear of the first member that has a sibling of every other member over the same input.
    private static IEnumerable<Group> Groups(string prefix, IReadOnlyList<string> members, Dictionary<string, List<Node>> byWeightName)
    {
        foreach (var first in byWeightName[$"{prefix}.{members[0]}.weight"])
        {
            var linears = new List<Node> { first };
            foreach (var member in members.Skip(1))
            {
                var sibling = byWeightName.GetValueOrDefault($"{prefix}.{member}.weight")?.FirstOrDefault(n => ReferenceEquals(n.Inputs[0], first.Inputs[0]));
                if (sibling is null) break;
                linears.Add(sibling);
            }
            if (linears.Count == members.Count) yield return new Group(prefix, linears);
        }
    }

    private static bool TryFuse(ModelGraph graph, Dictionary<Value, ParameterSpec> parameters, string prefix, IReadOnlyList<Node> linears, string fused)
    {
        var hasBias = linears[0].Inputs.Count == 3;
        if (linears.Any(n => n.Inputs.Count != linears[0].Inputs.Count)) return false;
        var weights = linears.Select(n => parameters[n.Inputs[1]]).ToList();
        var weightName = $"{prefix}.{fused}.weight";
        var biasName = $"{prefix}.{fused}.bias";
        var taken = graph.ValuesByName();
        if (taken.ContainsKey(weightName) || (hasBias && taken.ContainsKey(biasName))) return false;
        var weightRecipe = ConcatRecipe(weights);
        if (weightRecipe is null) return false;
        List<ParameterSpec>? biases = null;
        LoadRecipe? biasRecipe = null;
        if (hasBias)
        {
            if (!linears.All(n => n.Inputs[2] is var b && parameters.ContainsKey(b) && b.Shape.Rank == 1)) return false;
            biases = linears.Select(n => parameters[n.Inputs[2]]).ToList();
            biasRecipe = ConcatRecipe(biases);
            if (biasRecipe is null) return false;
        }

        var x = linears[0].Inputs[0];
        List<Value> inputs = [x, AddParameterAt(graph, weights[0], weightName, Sizes(weights), weightRecipe)];
        if (biases != null) inputs.Add(AddParameterAt(graph, biases[0], biasName, Sizes(biases), biasRecipe!));

        // Before the earliest member, where x is available and every member's reader still follows.
        var anchor = linears.MinBy(graph.Nodes.IndexOf)!;
        var scope = Scope(anchor.Output.Name);
        var linear = graph.CreateNode("linear", inputs, nameHint: scope + fused);
        graph.InsertBefore(anchor, linear);
        // One split, not a slice per member: measured faster on the small default model (per-op overhead).
        var split = graph.CreateNode("split", [linear.Output], new Dictionary<string, AttributeValue>
        {
            ["axis"] = new IntAttribute(-1),
            ["sizes"] = new IntsAttribute([.. linears.Select(n => n.Inputs[1].Shape[0].Size)]),
        }, scope + "split", null);
        graph.InsertBefore(anchor, split);
        for (var i = 0; i < linears.Count; i++) graph.ReplaceUses(linears[i].Output, split.Outputs[i]);
        graph.RemoveNodes(linears);
        return true;
    }

    // Sources of every member in order, the steps they share, then the concat along the output dimension.
    // Members that differ only in a first slice (each rank's share, from sharding) get one slice_each step.
    // Members that start with llama.cpp's row order undone (q and k of a GGUF file, not v) keep it as one
    // deinterleave_rows step for those members, first. Null when the members differ in other steps, dtype
    // or input width, or a recipe already joins tensors.
    private static LoadRecipe? ConcatRecipe(IReadOnlyList<ParameterSpec> members)
    {
        var first = members[0];
        var shape = first.Value.Shape;
        foreach (var member in members)
        {
            var recipe = member.Recipe;
            if (recipe.Sources.Count != 1 || recipe.Steps.Any(s => s is ConcatStep or SliceEachStep or DeinterleaveRowsStep { Only: not null })
                || member.Value.DType != first.Value.DType) return null;
            var memberShape = member.Value.Shape;
            if (memberShape.Rank != shape.Rank || !memberShape.IsFullyKnown || Enumerable.Range(1, shape.Rank - 1).Any(d => memberShape[d] != shape[d])) return null;
        }
        var sources = members.Select(m => m.Recipe.Sources[0]).ToList();
        var deinterleaved = members.Select((m, i) => (Step: m.Recipe.Steps.FirstOrDefault() as DeinterleaveRowsStep, Index: i)).Where(d => d.Step is not null).ToList();
        if (deinterleaved.Select(d => d.Step!.Group).Distinct().Count() > 1) return null;
        List<RecipeStep> leading = deinterleaved.Count == 0 ? [] : [new DeinterleaveRowsStep(deinterleaved[0].Step!.Group, [.. deinterleaved.Select(d => d.Index)])];
        var steps = members.Select(m => m.Recipe.Steps.Skip(m.Recipe.Steps.FirstOrDefault() is DeinterleaveRowsStep ? 1 : 0).ToList()).ToList();

        if (steps.All(s => s.SequenceEqual(steps[0])))
            return new LoadRecipe(sources, [.. leading, .. steps[0], new ConcatStep(0)]);

        if (steps[0] is not [SliceStep { Dim: var dim }, ..]) return null;
        var rest = steps[0].Skip(1).ToList();
        if (!steps.All(s => s is [SliceStep slice, ..] && slice.Dim == dim && s.Skip(1).SequenceEqual(rest))) return null;
        var slices = steps.Select(s => (SliceStep)s[0]).ToList();
        return new LoadRecipe(sources, [.. leading, new SliceEachStep(dim, [.. slices.Select(s => s.Start)], [.. slices.Select(s => s.Length)]), .. rest, new ConcatStep(0)]);
    }

    // The members' shape with their output dimensions (dim 0) added up.
    private static long[] Sizes(IReadOnlyList<ParameterSpec> members)
    {
        var sizes = members[0].Value.Shape.ToSizes();
        sizes[0] = members.Sum(m => m.Value.Shape[0].Size);
        return sizes;
    }

    // Listed where the first member was, so the parameters keep the checkpoint's layer order.
    private static Value AddParameterAt(ModelGraph graph, ParameterSpec first, string name, long[] shape, LoadRecipe recipe)
    {
        var spec = graph.AddParameter(name, first.Value.DType, shape, recipe);
        graph.Parameters.Remove(spec);
        graph.Parameters.Insert(graph.Parameters.IndexOf(first), spec);
        return spec.Value;
    }

    // "layers.0.linear_24" -> "layers.0.", so the new values are named in the layer's scope.
    private static string Scope(string name)
    {
        var dot = name.LastIndexOf('.');
        return dot < 0 ? "" : name[..(dot + 1)];
    }

    private static void RemoveUnreadParameters(ModelGraph graph, IEnumerable<Value> candidates)
    {
        var read = new HashSet<Value>(graph.Outputs, ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes) read.UnionWith(node.Inputs);
        graph.RemoveParameters(candidates.Where(v => !read.Contains(v)));
    }
}
