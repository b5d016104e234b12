using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Models;

namespace Kiln.Runtime;

/// <summary>The end-of-sequence ids of a checkpoint: eos_token_id of config.json and generation_config.json (an id or a list).</summary>
public static class StopTokens
{
    public static IReadOnlySet<int> Of(Checkpoint checkpoint)
    {
        var ids = new HashSet<int>(Read(checkpoint.Config, Path.Combine(checkpoint.Directory, Checkpoint.ConfigFileName)));
        if (checkpoint.GenerationConfig is { } generation)
            ids.UnionWith(Read(generation, Path.Combine(checkpoint.Directory, Checkpoint.GenerationConfigFileName)));
        return ids;
    }

    private static int[] Read(JsonObject json, string file) => new ConfigReader(json, file).Ints("eos_token_id");
}
