using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// Shape and dtype rules of the load-recipe steps, evaluated on headers alone, so a recipe can be
/// checked when weights are bound, long before any byte is read. The executor follows the same rules.
/// </summary>
public static class RecipeShapes
{
    /// <summary>The dtype and shape the recipe produces from <paramref name="sources"/> (one per <see cref="LoadRecipe.Sources"/> entry).</summary>
    public static (DType DType, long[] Shape) Infer(IReadOnlyList<TensorInfo> sources, LoadRecipe recipe)
    {
        if (sources.Count != recipe.Sources.Count)
        {
            throw new ArgumentException($"recipe {recipe} names {recipe.Sources.Count} sources but {sources.Count} were given", nameof(sources));
        }
        IReadOnlyList<(DType DType, long[] Shape)> list = sources.Select(s => (s.DType, s.Shape)).ToList();
        for (var i = 0; i < recipe.Steps.Count; i++)
        {
            list = Apply(list, recipe, i);
        }
        if (list.Count != 1)
        {
            throw new KilnException($"recipe {recipe}: ends with {list.Count} tensors instead of one (a concat is missing)");
        }
        return list[0];
    }

    // One tensor sliced to `length` entries of dimension `dim` from `start`.
    private static (DType DType, long[] Shape) Sliced((DType DType, long[] Shape) t, int dim, long start, long length, Func<string, KilnException> fail)
    {
        if (dim < 0 || dim >= t.Shape.Length)
            throw fail($"dimension {dim} does not exist in shape {Format(t.Shape)}");
        if (start < 0 || length < 0 || start > t.Shape[dim] - length)
            throw fail($"range [{start}, {start + length}) is outside dimension {dim} of shape {Format(t.Shape)}");
        var shape = (long[])t.Shape.Clone();
        shape[dim] = length;
        return (t.DType, shape);
    }

    /// <summary>The shape the recipe makes from sources of these shapes (a model's declaration, before any checkpoint exists).</summary>
    public static long[] Infer(IReadOnlyList<long[]> sourceShapes, LoadRecipe recipe) =>
        Infer(sourceShapes.Select((shape, i) => new TensorInfo(recipe.Sources[i], DType.F32, shape, "", 0, 0)).ToList(), recipe).Shape;

    /// <summary>The working list after step <paramref name="index"/> of <paramref name="recipe"/>.</summary>
    internal static IReadOnlyList<(DType DType, long[] Shape)> Apply(IReadOnlyList<(DType DType, long[] Shape)> list, LoadRecipe recipe, int index)
    {
        var step = recipe.Steps[index];
        KilnException Fail(string problem) => new($"recipe {recipe}: step {index + 1} {step}: {problem}");

        switch (step)
        {
            case TransposeStep:
                return list.Select(t => t.Shape.Length == 2
                    ? (t.DType, new[] { t.Shape[1], t.Shape[0] })
                    : throw Fail($"needs a 2-D tensor, found shape {Format(t.Shape)}")).ToList();

            case SliceStep slice:
                return list.Select(t => Sliced(t, slice.Dim, slice.Start, slice.Length, Fail)).ToList();

            case SliceEachStep each:
                if (each.Starts.Length != list.Count || each.Lengths.Length != list.Count)
                    throw Fail($"has {each.Starts.Length} starts and {each.Lengths.Length} lengths for {list.Count} tensors");
                return list.Select((t, i) => Sliced(t, each.Dim, each.Starts[i], each.Lengths[i], Fail)).ToList();

            case ConcatStep concat:
                if (list.Count == 0) throw Fail("nothing to concatenate");
                var first = list[0];
                if (concat.Dim < 0 || concat.Dim >= first.Shape.Length)
                    throw Fail($"dimension {concat.Dim} does not exist in shape {Format(first.Shape)}");
                var total = 0L;
                foreach (var t in list)
                {
                    if (t.DType != first.DType)
                        throw Fail($"mixes {first.DType.Name()} and {t.DType.Name()}");
                    if (t.Shape.Length != first.Shape.Length || Enumerable.Range(0, t.Shape.Length).Any(d => d != concat.Dim && t.Shape[d] != first.Shape[d]))
                        throw Fail($"shapes {Format(first.Shape)} and {Format(t.Shape)} differ outside dimension {concat.Dim}");
                    total += t.Shape[concat.Dim];
                }
                var joined = (long[])first.Shape.Clone();
                joined[concat.Dim] = total;
                return [(first.DType, joined)];

            case CastStep cast:
                return list.Select(t => RecipeExecutor.CanCast(t.DType, cast.To)
                    ? (cast.To, t.Shape)
                    : throw Fail($"cast from {t.DType.Name()} to {cast.To.Name()} is not supported (only between f32, f16 and bf16)")).ToList();

            case QuantizeStep quantize:
                return list.Select(t => t.Shape.Length == 2 && t.DType is DType.F32 or DType.F16 or DType.BF16
                    ? (DType.U8, new[] { t.Shape[0], quantize.Scheme.RowBytes(t.Shape[1]) })
                    : throw Fail($"needs a 2-D f32, f16 or bf16 tensor, found {t.DType.Name()} {Format(t.Shape)}")).ToList();

            case DeinterleaveRowsStep deinterleave:
                if (deinterleave.Group < 2 || deinterleave.Group % 2 != 0)
                    throw Fail($"group {deinterleave.Group} is not an even number of rows");
                if (deinterleave.Only is { } only && (only.Length == 0 || only.Distinct().Count() != only.Length || only.Any(i => i < 0 || i >= list.Count)))
                    throw Fail($"only [{string.Join(", ", only)}] does not name distinct tensors of the {list.Count}");
                return list.Select((t, i) => !deinterleave.AppliesTo(i) || t.Shape.Length >= 1 && t.Shape[0] % deinterleave.Group == 0
                    ? (t.DType, t.Shape)
                    : throw Fail($"needs rows in whole groups of {deinterleave.Group}, found shape {Format(t.Shape)}")).ToList();

            case OffsetStep:
                return list.Select(t => t.DType is DType.F32 or DType.F16 or DType.BF16
                    ? (DType.F32, t.Shape)
                    : throw Fail($"needs an f32, f16 or bf16 tensor, found {t.DType.Name()}")).ToList();

            case DequantizeStep dequantize:
                var blockBytes = dequantize.Scheme.BlockBytes();
                return list.Select(t => t.DType == DType.U8 && t.Shape.Length >= 1 && t.Shape[^1] % blockBytes == 0
                    ? (DType.F32, (long[])[.. t.Shape[..^1], t.Shape[^1] / blockBytes * QuantSchemes.BlockSize])
                    : throw Fail($"needs u8 rows of whole {blockBytes}-byte blocks, found {t.DType.Name()} {Format(t.Shape)}")).ToList();

            case NBitsLayoutStep layout:
                var symBytes = QuantScheme.Int4Sym.BlockBytes();
                return list.Select(t => t.DType == DType.U8 && t.Shape.Length == 2 && t.Shape[1] % symBytes == 0
                    ? layout.Part == NBitsPart.Data
                        ? (DType.U8, new[] { t.Shape[0], t.Shape[1] / symBytes, QuantSchemes.BlockSize / 2 })
                        : (DType.F32, new[] { t.Shape[0], t.Shape[1] / symBytes })
                    : throw Fail($"needs u8 [n, blocks · {symBytes}] int4_sym rows, found {t.DType.Name()} {Format(t.Shape)}")).ToList();

            case SplitColumnsStep split:
                return list.Select(t => t.Shape.Length == 2 && split.Parts >= 2 && t.Shape[1] % split.Parts == 0
                    ? (t.DType, new[] { split.Parts, t.Shape[0], t.Shape[1] / split.Parts })
                    : throw Fail($"needs a 2-D tensor whose columns split into {split.Parts} equal blocks (at least 2), found shape {Format(t.Shape)}")).ToList();

            default:
                throw Fail("unknown step");
        }
    }

    /// <summary>Shapes as users read them: [4096, 11008].</summary>
    public static string Format(IReadOnlyList<long> shape) => $"[{string.Join(", ", shape)}]";
}
