using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Tests;

/// <summary>
/// Checkpoints by family name for tests that run on every family: the oracle cases by their names,
/// "default" (the embedded model) and "bf16" (a random BF16 Llama written into a temporary folder).
/// </summary>
public static class FamilyModels
{
    public static string Directory(string family, TempDir temp)
    {
        switch (family)
        {
            case "default":
                return TestPaths.DefaultModel;
            case "bf16":
                // head_dim 16: the cache folds rotary into the kernel, which reads q and k from the slices.
                RandomCheckpointWriter.Write(new TestModelOptions("llama", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96, Vocab: 128,
                    DType: DType.BF16, Seed: 7, MaxPositions: 64), temp.Path);
                return temp.Path;
            default:
                return TestPaths.Oracle(family);
        }
    }
}
