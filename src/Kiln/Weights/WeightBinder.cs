using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// The weight_load step: checks every parameter's recipe against the checkpoint's headers (tensor
/// present, shape as config.json implies) and appends a cast where the stored dtype differs from the
/// graph's. Reads headers only, never tensor data.
/// </summary>
public static class WeightBinder
{
    public static void Bind(ModelGraph graph, Checkpoint checkpoint)
    {
        foreach (var parameter in graph.Parameters)
        {
            var sources = parameter.Recipe.Sources.Select(name => checkpoint.Tensors.TryGetValue(name, out var tensor)
                ? tensor
                : throw KilnException.InFile(WeightsFileName(checkpoint), name, "tensor is missing (config.json implies it)")).ToList();
            var (dtype, shape) = RecipeShapes.Infer(sources, parameter.Recipe);
            var expected = parameter.Value.Shape.ToSizes();
            if (!shape.SequenceEqual(expected))
            {
                throw KilnException.InFile(Path.GetFileName(sources[0].File), parameter.Recipe.Sources[0],
                    $"shape {RecipeShapes.Format(shape)} disagrees with config.json, which implies {RecipeShapes.Format(expected)}");
            }
            if (dtype != parameter.Value.DType)
            {
                if (!RecipeExecutor.CanCast(dtype, parameter.Value.DType))
                    throw KilnException.InFile(Path.GetFileName(sources[0].File), parameter.Recipe.Sources[0], $"dtype {dtype.Name()} is not supported");
                parameter.Recipe = parameter.Recipe.Then(new CastStep(parameter.Value.DType));
            }
        }
    }

    private static string WeightsFileName(Checkpoint checkpoint) =>
        checkpoint.WeightFiles.Count == 1 ? checkpoint.WeightFiles[0].RelativeName : Checkpoint.IndexFileName;
}
