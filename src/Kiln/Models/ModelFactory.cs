using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Models;

/// <summary>Picks the model definition for a config.json by its model_type and traces the graph.</summary>
public static class ModelFactory
{
    public static IReadOnlyCollection<string> SupportedModelTypes => LlamaConfig.ModelTypes.Keys.ToArray();

    /// <summary>Reads and validates the family's config; errors name <paramref name="configFile"/> and the field.</summary>
    public static LlamaConfig ReadConfig(JsonObject config, string configFile) => LlamaConfig.Read(new ConfigReader(config, configFile));

    /// <summary>Validates the config (see <see cref="ReadConfig"/>) and traces the reference graph.</summary>
    public static ModelGraph Export(JsonObject config, string configFile, OpRegistry registry) =>
        new LlamaModel(ReadConfig(config, configFile)).Trace(registry);

    /// <summary>Validates the config (see <see cref="ReadConfig"/>) and gives what the trace's graph would declare, without tracing.</summary>
    public static ModelSignature Signature(JsonObject config, string configFile) =>
        new LlamaModel(ReadConfig(config, configFile)).Signature();
}
