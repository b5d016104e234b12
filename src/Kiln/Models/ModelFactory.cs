using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Models;

/// <summary>Picks the model definition for a config.json by its model_type and traces the graph.</summary>
public static class ModelFactory
{
    public static IReadOnlyCollection<string> SupportedModelTypes => LlamaConfig.ModelTypes.Keys.ToArray();

    /// <summary>Reads the family's config (errors name <paramref name="configFile"/> and the field) and traces the reference graph.</summary>
    public static ModelGraph Export(JsonObject config, string configFile, OpRegistry registry)
    {
        var reader = new ConfigReader(config, configFile);
        return new LlamaModel(LlamaConfig.Read(reader)).Trace(registry);
    }
}
