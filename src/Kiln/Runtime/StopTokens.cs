using Kiln.Checkpoints;
using Kiln.Models;

namespace Kiln.Runtime;

/// <summary>The end-of-sequence ids of a checkpoint: eos_token_id of config.json and generation_config.json (an id or a list).</summary>
public static class StopTokens
{
    /// <summary>Both files' ids, each checked to be in the vocabulary config.json declares.</summary>
    public static IReadOnlySet<int> Of(Checkpoint checkpoint)
    {
        var facts = ModelFactory.Read(checkpoint.Config, checkpoint.ConfigPath).Facts;
        var ids = new HashSet<int>(facts.EosTokenIds);
        if (checkpoint.GenerationConfig is { } json)
        {
            var generation = new ConfigReader(json, checkpoint.GenerationConfigPath);
            ids.UnionWith(generation.TokenIds("eos_token_id", facts.VocabSize));
            // Not used for generation, but checked like the same field of config.json.
            generation.TokenIds("bos_token_id", facts.VocabSize);
        }
        return ids;
    }
}
