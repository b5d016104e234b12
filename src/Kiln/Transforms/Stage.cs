namespace Kiln.Transforms;

/// <summary>
/// The pipeline's stages, in the order they run. A transform belongs to one stage; a pipeline lists
/// its transforms in non-decreasing stage order.
/// </summary>
[System.Text.Json.Serialization.JsonConverter(typeof(StageJsonConverter))]
public enum Stage
{
    Factory,
    Export,
    PostExport,
    PatternMatcher,
    Sharding,
    WeightLoad,
    PostLoadFusion,
    CacheInit,
    Compile,
}

public static class StageNames
{
    /// <summary>The snake_case name used in YAML and JSON ("post_export").</summary>
    public static string Name(this Stage stage) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(stage.ToString());

    public static bool TryParse(string name, out Stage stage)
    {
        foreach (var candidate in Enum.GetValues<Stage>())
        {
            if (candidate.Name() == name) { stage = candidate; return true; }
        }
        stage = default;
        return false;
    }
}

/// <summary>Writes stages in JSON by their snake_case names ("post_export").</summary>
public sealed class StageJsonConverter() : System.Text.Json.Serialization.JsonStringEnumConverter<Stage>(System.Text.Json.JsonNamingPolicy.SnakeCaseLower);
