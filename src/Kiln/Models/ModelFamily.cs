namespace Kiln.Models;

/// <summary>
/// A model family: its name (<c>kiln testmodel --family</c>), the config.json model types it covers, and
/// its description: <see cref="Read"/> reads and checks config.json into the family's model. The same
/// reads write the config of a test checkpoint (<see cref="ConfigReader.ForTestModel"/>).
/// </summary>
public sealed record ModelFamily(string Name, IReadOnlyList<string> ModelTypes, Func<ConfigReader, ModelDefinition> Read)
{
    /// <summary>
    /// transformers' base_model_prefix ("transformer." for GPT-2): the part of the layout's tensor names that a
    /// checkpoint saved from the base model (GPT2Model, as the original gpt2 files are) leaves out. Null: none.
    /// </summary>
    public string? BaseModelPrefix { get; init; }

    /// <summary>config.json's names for the sizes tensor parallelism splits, for errors about them.</summary>
    public ShardedFields ShardedFields { get; init; } = ShardedFields.Llama;

    /// <summary>The sharded fields of <paramref name="family"/> (a graph's family name), or Llama's for a family not registered.</summary>
    public static ShardedFields ShardedFieldsOf(string? family) =>
        (family is null ? null : FamilyRegistry.Named(family))?.ShardedFields ?? ShardedFields.Llama;
}
