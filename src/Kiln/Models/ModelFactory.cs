using System.Text.Json.Nodes;
using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Models;

/// <summary>Reads a checkpoint's config.json into its family's model (<see cref="FamilyRegistry"/>) and traces the graph.</summary>
public static class ModelFactory
{
    /// <summary>Reads and validates config.json with its family's description; errors name <paramref name="configFile"/> and the field.</summary>
    public static ModelDefinition Read(JsonObject config, string configFile)
    {
        var reader = new ConfigReader(config, configFile);
        return FamilyRegistry.Of(reader).Read(reader);
    }

    /// <summary>Validates the config (see <see cref="Read"/>) and traces the reference graph.</summary>
    public static ModelGraph Export(JsonObject config, string configFile, OpRegistry registry) => Read(config, configFile).Trace(registry);

    /// <summary>Validates the config (see <see cref="Read"/>) and gives what the trace's graph would declare, without tracing.</summary>
    public static ModelSignature Signature(JsonObject config, string configFile) => Read(config, configFile).Signature;
}
