using Kiln.Graph;

namespace Kiln.Checkpoints;

/// <summary>
/// The shape of a random-weight test checkpoint (<c>kiln testmodel</c>). Sizes follow the Hugging
/// Face config names; <see cref="Validate"/> names the option at fault by its name here (snake_case: "kv_heads"). The optional
/// members select a member of the Llama family and its variants: <see cref="ModelType"/> (llama,
/// mistral, qwen2, qwen3), an explicit head_dim, attention and MLP biases, rope_scaling and
/// Mistral's sliding_window. <see cref="WeightScale"/> widens every random value's spread, so that
/// tests comparing implementations see attention, norms and biases that are far from trivial.
/// </summary>
public sealed record TestModelOptions(
    string Family, int Layers, int Hidden, int Heads, int KvHeads, int Intermediate, int Vocab,
    DType DType, int Seed, bool TieEmbeddings = false, int MaxPositions = 2048, double RopeTheta = 10000,
    string ModelType = "llama", int? ExplicitHeadDim = null, bool AttentionBias = false, bool MlpBias = false,
    TestRopeScaling? RopeScaling = null, int? SlidingWindow = null, double WeightScale = 1)
{
    /// <summary>Llama 3.1 8B's configuration (32 layers, hidden 4096, GQA 32/8, 128K context, bf16), for sparse benchmark checkpoints.</summary>
    public static TestModelOptions Llama3_8B { get; } = new("llama", Layers: 32, Hidden: 4096, Heads: 32, KvHeads: 8, Intermediate: 14336,
        Vocab: 128256, DType: DType.BF16, Seed: 0, MaxPositions: 131072, RopeTheta: 500000, RopeScaling: TestRopeScaling.Llama3(8, 1, 4, 8192));

    /// <summary>Llama 3.1 70B's configuration (80 layers, hidden 8192, GQA 64/8), otherwise as <see cref="Llama3_8B"/>.</summary>
    public static TestModelOptions Llama3_70B { get; } = Llama3_8B with { Layers = 80, Hidden = 8192, Heads = 64, Intermediate = 28672 };

    /// <summary>The families <see cref="RandomCheckpointWriter"/> can write.</summary>
    public static IReadOnlyList<string> Families { get; } = ["llama"];

    /// <summary>The config.json model types of the llama family the writer can write.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["llama", "mistral", "qwen2", "qwen3"];

    public int HeadDim => ExplicitHeadDim ?? Hidden / Heads;

    /// <summary>q, k and v projections have biases: Qwen2 always, Llama and Qwen3 when attention_bias is set.</summary>
    public bool QkvBias => ModelType == "qwen2" || AttentionBias;

    /// <summary>o_proj has a bias only with attention_bias (Qwen2's o_proj never has one).</summary>
    public bool OutputBias => AttentionBias;

    /// <summary>Qwen3 normalizes each head of q and k (q_norm, k_norm).</summary>
    public bool QkNorm => ModelType == "qwen3";

    /// <summary>Throws <see cref="KilnException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (!Families.Contains(Family))
            throw new KilnException($"family: \"{Family}\" is not supported (supported: {string.Join(", ", Families)})");
        if (!ModelTypes.Contains(ModelType))
            throw new KilnException($"model_type: \"{ModelType}\" is not supported (supported: {string.Join(", ", ModelTypes)})");
        foreach (var (option, value) in new[]
        {
            ("layers", Layers), ("hidden", Hidden), ("heads", Heads), ("kv_heads", KvHeads),
            ("intermediate", Intermediate), ("vocab", Vocab), ("max_positions", MaxPositions),
            ("head_dim", ExplicitHeadDim ?? 1), ("sliding_window", SlidingWindow ?? 1),
        })
        {
            if (value <= 0) throw new KilnException($"{option}: must be positive, got {value}");
        }
        if (ExplicitHeadDim is null && Hidden % Heads != 0)
            throw new KilnException($"heads: {Heads} does not divide hidden {Hidden}");
        if (HeadDim % 2 != 0)
        {
            throw ExplicitHeadDim is null
                ? new KilnException($"heads: head dimension {Hidden}/{Heads} = {HeadDim} must be even for rotary embeddings")
                : new KilnException($"head_dim: {HeadDim} must be even for rotary embeddings");
        }
        if (Heads % KvHeads != 0)
            throw new KilnException($"kv_heads: {KvHeads} does not divide heads {Heads}");
        if (DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new KilnException($"dtype: {DType.Name()} is not supported (f32, f16 or bf16)");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta))
            throw new KilnException($"rope_theta: must be a positive number, got {RopeTheta}");
        // Only the configuration classes that read a setting may carry it: transformers ignores the rest.
        if (AttentionBias && ModelType is not ("llama" or "qwen3"))
            throw new KilnException($"attention_bias: {ModelType} has no attention_bias setting (qwen2 always has q/k/v biases)");
        if (MlpBias && ModelType != "llama")
            throw new KilnException($"mlp_bias: only llama has an mlp_bias setting, not {ModelType}");
        if (SlidingWindow is not null && ModelType != "mistral")
            throw new KilnException($"sliding_window: only mistral is written with a sliding_window, not {ModelType}");
        if (RopeScaling is not null && ModelType == "mistral")
            throw new KilnException("rope_scaling: mistral configs have no rope_scaling");
        RopeScaling?.Validate();
        if (!(WeightScale > 0) || !double.IsFinite(WeightScale))
            throw new KilnException($"weight_scale: must be a positive number, got {WeightScale}");
    }
}
