using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// Every parameter of a graph, ready for the runtime, and what keeps their bytes alive: buffers the
/// recipes produced, and a mapping of cached products when the snapshot cache supplied them.
/// </summary>
public sealed class WeightSet : IDisposable
{
    private readonly IDisposable? _mapping;

    public WeightSet(IReadOnlyList<ParameterData> parameters, IDisposable? mapping = null)
    {
        Parameters = parameters;
        _mapping = mapping;
    }

    public IReadOnlyList<ParameterData> Parameters { get; }

    /// <summary>
    /// Applies each parameter's load recipe, except those in <paramref name="given"/> (already made,
    /// e.g. mapped from the cache), which are taken as they are. A parameter with a place in
    /// <paramref name="destinations"/> (a weights file being saved, which <paramref name="mapping"/> keeps
    /// mapped) is made there, and <paramref name="made"/> hears its name once it is. <paramref name="progress"/> hears
    /// how far the quantize steps are (from worker threads), when there are any.
    /// </summary>
    public static WeightSet Compute(Checkpoint checkpoint, ModelGraph graph, IReadOnlyDictionary<string, ParameterData>? given = null, IDisposable? mapping = null,
        IReadOnlyDictionary<string, nint>? destinations = null, IProgress<QuantizeProgress>? progress = null, Action<string>? made = null)
    {
        var weights = new List<ParameterData>();
        var total = graph.Parameters.Where(p => given?.ContainsKey(p.Name) != true).Sum(p => WeightsToQuantize(checkpoint, p.Recipe));
        var done = 0L;
        Action<long>? report = progress is null || total == 0 ? null : count => progress.Report(new QuantizeProgress(Interlocked.Add(ref done, count), total));
        // A weight's MatMulNBits data and scales (adjacent parameters) re-lay the same blocks: made once, for both.
        (string Recipe, ParameterData Data)? blocks = null;
        try
        {
            foreach (var p in graph.Parameters)
            {
                var destination = destinations?.GetValueOrDefault(p.Name) ?? 0;
                if (given?.GetValueOrDefault(p.Name) is { } ready) weights.Add(ready);
                else if (p.Recipe.Steps is [.., NBitsLayoutStep layout])
                {
                    var before = WithoutLastStep(p.Recipe);
                    if (blocks?.Recipe != before.ToString())
                    {
                        blocks?.Data.Dispose();
                        blocks = null;
                        // Data [n, blocks, 16] and scales [n, blocks] both re-lay u8 [n, blocks · 18].
                        var sizes = p.Value.Shape.ToSizes();
                        long[] shape = [sizes[0], sizes[1] * QuantScheme.Int4Sym.BlockBytes()];
                        blocks = (before.ToString(), RecipeExecutor.Execute(checkpoint, p.Name, before, DType.U8, shape, 0, report));
                    }
                    weights.Add(RecipeExecutor.Relay(p.Name, blocks.Value.Data, layout, p.Value.DType, p.Value.Shape.ToSizes(), destination));
                }
                else weights.Add(RecipeExecutor.Execute(checkpoint, p.Name, p.Recipe, p.Value.DType, p.Value.Shape.ToSizes(), destination, report));
                if (destination != 0) made?.Invoke(p.Name);
            }
            return new WeightSet(weights, mapping);
        }
        catch
        {
            foreach (var w in weights) w.Dispose();
            mapping?.Dispose();
            throw;
        }
        finally
        {
            blocks?.Data.Dispose();
        }
    }

    private static LoadRecipe WithoutLastStep(LoadRecipe recipe) => recipe with { Steps = [.. recipe.Steps.Take(recipe.Steps.Count - 1)] };

    // Elements the recipe's quantize step takes (its input [n, k]); 0 without one, or when the recipe does not fit the checkpoint (Execute reports that).
    // A quantize followed by nbits_layout counts for the data only: the scales are re-laid from the same blocks.
    private static long WeightsToQuantize(Checkpoint checkpoint, LoadRecipe recipe)
    {
        if (recipe.Steps is [.., QuantizeStep, NBitsLayoutStep { Part: NBitsPart.Data }]) recipe = WithoutLastStep(recipe);
        if (recipe.Steps.Count == 0 || recipe.Steps[^1] is not QuantizeStep || !recipe.Sources.All(checkpoint.Tensors.ContainsKey)) return 0;
        try
        {
            var before = WithoutLastStep(recipe);
            var (_, shape) = RecipeShapes.Infer([.. recipe.Sources.Select(name => checkpoint.Tensors[name])], before);
            return shape.Aggregate(1L, (a, b) => a * b);
        }
        catch (KilnException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Whether a parameter is a weight product: its recipe has steps, so it may be computed rather than
    /// viewed (whether it is, <see cref="ParameterData.IsCopy"/> says once executed).
    /// </summary>
    public static bool MayBeProduct(ParameterSpec parameter) => parameter.Recipe.Steps.Count > 0;

    public void Dispose()
    {
        foreach (var w in Parameters) w.Dispose();
        _mapping?.Dispose();
    }
}
