using Kiln.Checkpoints;
using Kiln.Checkpoints.Gguf;
using Kiln.Graph;
using Kiln.Models;

namespace Kiln.Weights;

/// <summary>
/// The weight_load step: checks every parameter's recipe against the checkpoint's headers (tensor
/// present, under the layout's name or, in a checkpoint saved from the base model, without the
/// family's <see cref="ModelFamily.BaseModelPrefix"/>; shape as config.json implies), starts it with
/// the steps the checkpoint's storage needs (<see cref="Checkpoint.StorageSteps"/>, and a dequantize
/// for tensors stored in blocks: <see cref="StoredBlocks"/>), and appends a cast where the stored
/// dtype differs from the graph's. Reads headers only, never tensor data.
/// </summary>
public static class WeightBinder
{
    public static void Bind(ModelGraph graph, Checkpoint checkpoint)
    {
        var basePrefix = graph.Model is { } model ? FamilyRegistry.Named(model.Family)?.BaseModelPrefix : null;
        foreach (var parameter in graph.Parameters)
        {
            var names = parameter.Recipe.Sources.Select(name => StoredName(checkpoint, name, basePrefix)
                ?? throw KilnException.InFile(WeightsFileName(checkpoint), Named(checkpoint, name), $"tensor is missing ({ConfigName(checkpoint)} implies it)")).ToList();
            var sources = names.Select(name => checkpoint.Tensors[name]).ToList();
            var recipe = ReadAsStored(parameter.Recipe with { Sources = names }, sources, checkpoint);
            var (dtype, shape) = RecipeShapes.Infer(sources, recipe);
            var expected = parameter.Value.Shape.ToSizes();
            if (!shape.SequenceEqual(expected))
            {
                throw KilnException.InFile(Path.GetFileName(sources[0].File), Named(checkpoint, parameter.Recipe.Sources[0]),
                    $"shape {RecipeShapes.Format(shape)} disagrees with {ConfigName(checkpoint)}, which implies {RecipeShapes.Format(expected)}");
            }
            if (dtype != parameter.Value.DType)
            {
                if (!RecipeExecutor.CanCast(dtype, parameter.Value.DType))
                    throw KilnException.InFile(Path.GetFileName(sources[0].File), parameter.Recipe.Sources[0], $"dtype {dtype.Name()} is not supported");
                recipe = recipe.Then(new CastStep(parameter.Value.DType));
            }
            parameter.Recipe = recipe;
        }
    }

    /// <summary>
    /// <paramref name="recipe"/> as it must read the checkpoint's stored tensors: after its source, the tensor's storage
    /// steps, and for tensors stored in blocks a dequantize after the steps that move whole rows. For a Hugging Face
    /// folder, the recipe unchanged.
    /// </summary>
    public static LoadRecipe ReadAsStored(LoadRecipe recipe, IReadOnlyList<TensorInfo> sources, Checkpoint checkpoint)
    {
        var storage = checkpoint.StorageSteps(recipe.Sources[0]);
        if (storage.Count > 0)
        {
            // Export and sharding make one-source recipes; the fusions that join sources come after binding.
            if (recipe.Sources.Count != 1) throw new ArgumentException($"recipe {recipe} joins tensors before they are bound", nameof(recipe));
            recipe = recipe with { Steps = [.. storage, .. recipe.Steps] };
        }
        var blocks = sources.Select(s => s.Blocks).Distinct().ToList();
        if (blocks.Count > 1)
            throw KilnException.InFile(checkpoint.Directory, recipe.Sources[0], $"recipe {recipe} mixes tensors stored as {string.Join(" and ", sources.Select(s => s.StoredFormat).Distinct())}");
        return blocks[0] is { } scheme ? StoredBlocks.Dequantized(recipe, scheme) : recipe;
    }

    // The layout's name, or, in a checkpoint saved from the base model, that name without the family's prefix; null when neither is stored.
    private static string? StoredName(Checkpoint checkpoint, string name, string? basePrefix)
    {
        if (checkpoint.Tensors.ContainsKey(name)) return name;
        return basePrefix is not null && name.StartsWith(basePrefix, StringComparison.Ordinal)
            && checkpoint.Tensors.ContainsKey(name[basePrefix.Length..]) ? name[basePrefix.Length..] : null;
    }

    // A GGUF file's tensors are named as the file names them too.
    private static string Named(Checkpoint checkpoint, string name) =>
        checkpoint.Gguf is not null && GgufTensorNames.FromHuggingFace(name) is { } gguf ? $"{gguf} ({name})" : name;

    private static string ConfigName(Checkpoint checkpoint) => checkpoint.Gguf is null ? "config.json" : "its metadata";

    private static string WeightsFileName(Checkpoint checkpoint) =>
        checkpoint.WeightFiles.Count == 1 ? checkpoint.WeightFiles[0].RelativeName : Checkpoint.IndexFileName;
}
