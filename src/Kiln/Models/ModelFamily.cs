namespace Kiln.Models;

/// <summary>
/// A model family: its name (<c>kiln testmodel --family</c>), the config.json model types it covers, and
/// its description: <see cref="Read"/> reads and checks config.json into the family's model. The same
/// reads write the config of a test checkpoint (<see cref="ConfigReader.ForTestModel"/>).
/// </summary>
public sealed record ModelFamily(string Name, IReadOnlyList<string> ModelTypes, Func<ConfigReader, ModelDefinition> Read);
