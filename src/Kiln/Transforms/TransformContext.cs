using Kiln.Checkpoints;

namespace Kiln.Transforms;

/// <summary>
/// What transforms may consult besides the graph: the checkpoint (headers only; weight_load binds to
/// them) and the parallel layout.
/// </summary>
public sealed class TransformContext(Checkpoint? checkpoint, int worldSize = 1, int rank = 0)
{
    /// <summary>The checkpoint being compiled; null when a graph is transformed on its own (tests).</summary>
    public Checkpoint? Checkpoint { get; } = checkpoint;

    public int WorldSize { get; } = worldSize;

    public int Rank { get; } = rank;

    public Checkpoint RequireCheckpoint(string transform) =>
        Checkpoint ?? throw new InvalidOperationException($"{transform} needs a checkpoint");
}
