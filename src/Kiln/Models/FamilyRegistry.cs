using Kiln.Models.Gemma;
using Kiln.Models.Gpt2;
using Kiln.Models.Llama;
using Kiln.Models.Phi3;

namespace Kiln.Models;

/// <summary>Every model family Kiln knows, found by name or by config.json's model_type.</summary>
public static class FamilyRegistry
{
    public static IReadOnlyList<ModelFamily> Families { get; } = [LlamaModel.Family, Gpt2Model.Family, Phi3Model.Family, GemmaModel.Family];

    public static IReadOnlyList<string> ModelTypes { get; } = [.. Families.SelectMany(f => f.ModelTypes)];

    /// <summary>The family called <paramref name="name"/>, or null.</summary>
    public static ModelFamily? Named(string name) => Families.FirstOrDefault(f => f.Name == name);

    /// <summary>The family of config.json's model_type; an unknown one is an error naming the file and the field.</summary>
    public static ModelFamily Of(ConfigReader config)
    {
        var modelType = config.String("model_type");
        return Families.FirstOrDefault(f => f.ModelTypes.Contains(modelType))
            ?? throw config.Error("model_type", $"unsupported model type '{modelType}' (supported: {string.Join(", ", ModelTypes)})");
    }
}
