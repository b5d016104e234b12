using Kiln.Graph;
using Kiln.Models;

namespace Kiln.Checkpoints;

/// <summary>
/// What a random-weight test checkpoint (<c>kiln testmodel</c>) should be: its family and model type,
/// its sizes, the variant settings of the model type (an explicit head_dim, attention and MLP biases,
/// rope_scaling, Mistral's sliding_window), and how its weights are written. Which config.json field
/// each option fills, and which model types have which setting, is the family description's business
/// (<see cref="TestModelConfig"/>). <see cref="WeightScale"/> widens every random value's spread, so
/// that tests comparing implementations see attention, norms and biases that are far from trivial.
/// </summary>
public sealed record TestModelOptions(
    string Family, int Layers, int Hidden, int Heads, int KvHeads, int Intermediate, int Vocab,
    DType DType, int Seed, bool TieEmbeddings = false, int MaxPositions = 2048, double RopeTheta = TestModelOptions.DefaultRopeTheta,
    string ModelType = "llama", int? ExplicitHeadDim = null, bool AttentionBias = false, bool MlpBias = false,
    TestRopeScaling? RopeScaling = null, int? SlidingWindow = null, double WeightScale = 1)
{
    public const double DefaultRopeTheta = 10000;

    /// <summary>Llama 3.1 8B's configuration (32 layers, hidden 4096, GQA 32/8, 128K context, bf16), for sparse benchmark checkpoints.</summary>
    public static TestModelOptions Llama3_8B { get; } = new("llama", Layers: 32, Hidden: 4096, Heads: 32, KvHeads: 8, Intermediate: 14336,
        Vocab: 128256, DType: DType.BF16, Seed: 0, MaxPositions: 131072, RopeTheta: 500000, RopeScaling: TestRopeScaling.Llama3(8, 1, 4, 8192));

    /// <summary>Llama 3.1 70B's configuration (80 layers, hidden 8192, GQA 64/8), otherwise as <see cref="Llama3_8B"/>.</summary>
    public static TestModelOptions Llama3_70B { get; } = Llama3_8B with { Layers = 80, Hidden = 8192, Heads = 64, Intermediate = 28672 };

    /// <summary>--head-dim, else --hidden / --heads.</summary>
    public int HeadDim => ExplicitHeadDim ?? Hidden / Heads;

    /// <summary>
    /// Throws <see cref="KilnException"/> naming the first invalid option among those the family does not
    /// check itself: the family and model type, the default head dimension, and how weights are written.
    /// </summary>
    public void Validate()
    {
        var family = FamilyRegistry.Named(Family)
            ?? throw new KilnException($"family: \"{Family}\" is not supported (supported: {string.Join(", ", FamilyRegistry.Families.Select(f => f.Name))})");
        if (!family.ModelTypes.Contains(ModelType))
            throw new KilnException($"model_type: \"{ModelType}\" is not supported (supported: {string.Join(", ", family.ModelTypes)})");
        // Without --head-dim the head dimension is --hidden / --heads, so those must divide (every other size the family checks).
        if (ExplicitHeadDim is null && Heads > 0 && Hidden % Heads != 0)
            throw new KilnException($"heads: {Heads} does not divide hidden {Hidden}");
        if (DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new KilnException($"dtype: {DType.Name()} is not supported (f32, f16 or bf16)");
        if (!(WeightScale > 0) || !double.IsFinite(WeightScale))
            throw new KilnException($"weight_scale: must be a positive number, got {WeightScale}");
    }
}
