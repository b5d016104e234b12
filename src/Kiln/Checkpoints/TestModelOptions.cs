using Kiln.Graph;

namespace Kiln.Checkpoints;

/// <summary>
/// The shape of a random-weight test checkpoint (<c>kiln testmodel</c>). Sizes follow the Hugging
/// Face config names; <see cref="Validate"/> names the command-line option at fault.
/// </summary>
public sealed record TestModelOptions(
    string Family, int Layers, int Hidden, int Heads, int KvHeads, int Intermediate, int Vocab,
    DType DType, int Seed, bool TieEmbeddings = false, int MaxPositions = 2048, double RopeTheta = 10000)
{
    /// <summary>The families <see cref="RandomCheckpointWriter"/> can write.</summary>
    public static IReadOnlyList<string> Families { get; } = ["llama"];

    public int HeadDim => Hidden / Heads;

    /// <summary>Throws <see cref="KilnException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (!Families.Contains(Family))
            throw new KilnException($"--family: \"{Family}\" is not supported (supported: {string.Join(", ", Families)})");
        foreach (var (option, value) in new[]
        {
            ("--layers", Layers), ("--hidden", Hidden), ("--heads", Heads), ("--kv-heads", KvHeads),
            ("--intermediate", Intermediate), ("--vocab", Vocab), ("--max-positions", MaxPositions),
        })
        {
            if (value <= 0) throw new KilnException($"{option}: must be positive, got {value}");
        }
        if (Hidden % Heads != 0)
            throw new KilnException($"--heads: {Heads} does not divide --hidden {Hidden}");
        if (HeadDim % 2 != 0)
            throw new KilnException($"--heads: head dimension {Hidden}/{Heads} = {HeadDim} must be even for rotary embeddings");
        if (Heads % KvHeads != 0)
            throw new KilnException($"--kv-heads: {KvHeads} does not divide --heads {Heads}");
        if (DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new KilnException($"--dtype: {DType.Name()} is not supported (f32, f16 or bf16)");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta))
            throw new KilnException($"--rope-theta: must be a positive number, got {RopeTheta}");
    }
}
