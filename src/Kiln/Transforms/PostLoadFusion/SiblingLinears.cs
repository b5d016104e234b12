using Kiln.Graph;
using Kiln.Transforms.PatternMatching;
using Kiln.Weights;
using static Kiln.Transforms.PatternMatching.Pattern;

namespace Kiln.Transforms.PostLoadFusion;

/// <summary>
/// Fuses sibling projections: <c>linear</c> nodes over the same input whose weights are the checkpoint's
/// <c>PREFIX.MEMBER.weight</c> (e.g. q_proj, k_proj, v_proj) become one <c>linear</c> over a new parameter
/// <c>PREFIX.FUSED.weight</c> whose recipe concatenates the members' sources along the output dimension,
/// followed by one <c>split</c> of the last axis into the members' outputs. Only specs and recipes change,
/// never weight data. The match is a rewrite rule: the first member's linear is the root and the others
/// are its siblings (other readers of its input). Members are told apart by their weights' names, not by
/// what reads them: projections are fused whether or not an attention or swiglu reads them.
/// </summary>
public static class SiblingLinears
{
    /// <summary>Fuses every complete group of <paramref name="members"/> and returns how many were fused.</summary>
    public static int Fuse(ModelGraph graph, IReadOnlyList<string> members, string fused)
    {
        var parameters = graph.Parameters.ToDictionary(p => p.Value, p => p, (IEqualityComparer<Value>)ReferenceEqualityComparer.Instance);
        var replaced = new List<Value>();
        // Every member has a bias or none has: one rule for each case.
        RewriteRule Rule(bool hasBias) =>
            new(hasBias ? $"{fused} with bias" : fused, Linear(members[0], hasBias), m => Build(m, members, fused, hasBias, parameters, replaced))
            {
                Siblings = [.. members.Skip(1).Select(member => Linear(member, hasBias))],
            };
        var count = PatternRewriter.Rewrite(graph, Rule(hasBias: false), Rule(hasBias: true));
        RemoveUnreadParameters(graph, parameters, replaced);
        return count;
    }

    // linear(x, PREFIX.MEMBER.weight[, bias]), the weight captured as "MEMBER.weight" and the bias, a vector, as "MEMBER.bias".
    private static OpPattern Linear(string member, bool hasBias)
    {
        var weight = Any($"{member}.weight").Where(w => IsParameter(w) && w.Name.EndsWith($".{member}.weight", StringComparison.Ordinal));
        return hasBias
            ? Op("linear", Any("x"), weight, Any($"{member}.bias").Where(b => IsParameter(b) && b.Shape.Rank == 1))
            : Op("linear", Any("x"), weight);
    }

    private static bool IsParameter(Value value) => value.Kind == ValueKind.Parameter;

    // The fused linear and its split, or null when the members are of different layers, the fused names are
    // taken, or the recipes cannot be concatenated. Decides before emitting anything, so a refusal costs no names.
    private static IReadOnlyList<Value>? Build(Match m, IReadOnlyList<string> members, string fused, bool hasBias,
        Dictionary<Value, ParameterSpec> parameters, List<Value> replaced)
    {
        var firstWeight = m[$"{members[0]}.weight"].Name;
        var prefix = firstWeight[..^$".{members[0]}.weight".Length];
        if (members.Any(member => m[$"{member}.weight"].Name != $"{prefix}.{member}.weight")) return null;
        var weights = members.Select(member => parameters[m[$"{member}.weight"]]).ToList();
        var biases = hasBias ? members.Select(member => parameters[m[$"{member}.bias"]]).ToList() : null;
        var weightName = $"{prefix}.{fused}.weight";
        var biasName = $"{prefix}.{fused}.bias";
        var taken = m.Graph.ValuesByName();
        if (taken.ContainsKey(weightName) || (hasBias && taken.ContainsKey(biasName))) return null;
        var weightRecipe = ConcatRecipe(weights);
        var biasRecipe = biases is null ? null : ConcatRecipe(biases);
        if (weightRecipe is null || (biases is not null && biasRecipe is null)) return null;

        List<Value> inputs = [m["x"], AddParameterAt(m.Graph, weights[0], weightName, Sizes(weights), weightRecipe)];
        if (biases is not null) inputs.Add(AddParameterAt(m.Graph, biases[0], biasName, Sizes(biases), biasRecipe!));
        var linear = m.EmitNode("linear", inputs, name: fused);
        // One split, not a slice per member: measured faster on the small default model (per-op overhead).
        var split = m.EmitNode("split", [linear.Output], new()
        {
            ["axis"] = new IntAttribute(-1),
            ["sizes"] = new IntsAttribute([.. weights.Select(w => w.Value.Shape[0].Size)]),
        });
        replaced.AddRange(weights.Concat(biases ?? []).Select(p => p.Value));
        return split.Outputs;
    }

    // Sources of every member in order, the steps they share, then the concat along the output dimension.
    // Members that differ only in a first slice (each rank's share, from sharding) get one slice_each step.
    // Members that are consecutive rows of one tensor become one slice of it (ConsecutiveRows).
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
        var steps = members.Select(m => ComposeLeadingSlices(m.Recipe.Steps.Skip(m.Recipe.Steps.FirstOrDefault() is DeinterleaveRowsStep ? 1 : 0))).ToList();

        if (steps.All(s => s.SequenceEqual(steps[0])))
            return new LoadRecipe(sources, [.. leading, .. steps[0], new ConcatStep(0)]);

        if (ConsecutiveRows(sources, leading, steps) is { } rows) return rows;

        if (steps[0] is not [SliceStep { Dim: var dim }, ..]) return null;
        var rest = steps[0].Skip(1).ToList();
        if (!steps.All(s => s is [SliceStep slice, ..] && slice.Dim == dim && s.Skip(1).SequenceEqual(rest))) return null;
        var slices = steps.Select(s => (SliceStep)s[0]).ToList();
        return new LoadRecipe(sources, [.. leading, new SliceEachStep(dim, [.. slices.Select(s => s.Start)], [.. slices.Select(s => s.Length)]), .. rest, new ConcatStep(0)]);
    }

    // Members that are consecutive row ranges of one stored tensor (Phi-3's q, k and v of qkv_proj), with
    // only casts after: one slice of its rows, which loads as a view of the file, not a concatenated copy.
    private static LoadRecipe? ConsecutiveRows(List<string> sources, List<RecipeStep> leading, List<List<RecipeStep>> steps)
    {
        if (leading.Count != 0 || sources.Distinct().Count() != 1) return null;
        if (!steps.All(s => s is [SliceStep { Dim: 0 }, .. var rest] && rest.All(r => r is CastStep) && rest.SequenceEqual(steps[0].Skip(1)))) return null;
        var slices = steps.Select(s => (SliceStep)s[0]).ToList();
        for (var i = 1; i < slices.Count; i++)
        {
            if (slices[i].Start != slices[i - 1].Start + slices[i - 1].Length) return null;
        }
        return new LoadRecipe([sources[0]], [new SliceStep(0, slices[0].Start, slices.Sum(s => s.Length)), .. steps[0].Skip(1)]);
    }

    // A slice of a slice of the same dimension is one slice (a Phi-3 projection's rows of qkv_proj, then a rank's share of them).
    private static List<RecipeStep> ComposeLeadingSlices(IEnumerable<RecipeStep> steps)
    {
        var list = steps.ToList();
        while (list is [SliceStep outer, SliceStep inner, ..] && outer.Dim == inner.Dim)
            list = [new SliceStep(outer.Dim, outer.Start + inner.Start, inner.Length), .. list.Skip(2)];
        return list;
    }

    // The members' shape with their output dimensions (dim 0) added up.
    private static long[] Sizes(IReadOnlyList<ParameterSpec> members)
    {
        var sizes = members[0].Value.Shape.ToSizes();
        sizes[0] = members.Sum(m => m.Value.Shape[0].Size);
        return sizes;
    }

    // Listed where the first member was, so the parameters keep the checkpoint's layer order.
    private static Value AddParameterAt(ModelGraph graph, ParameterSpec first, string name, long[] shape, LoadRecipe recipe) =>
        graph.InsertParameter(graph.Parameters.IndexOf(first), name, first.Value.DType, shape, recipe).Value;

    // The members' weights and biases that no node reads once their linears are fused.
    private static void RemoveUnreadParameters(ModelGraph graph, Dictionary<Value, ParameterSpec> parameters, IEnumerable<Value> candidates)
    {
        foreach (var value in candidates.ToHashSet<Value>(ReferenceEqualityComparer.Instance))
        {
            if (!value.IsUsed) graph.RemoveParameter(parameters[value]);
        }
    }
}
