using Microsoft.ML.OnnxRuntime;

namespace Kiln.Compile;

/// <summary>How <see cref="CompiledSession"/> configures ONNX Runtime.</summary>
/// <param name="IntraOpThreads">Threads for one op; null leaves ORT's default, the number of physical cores.</param>
/// <param name="Prepacking">
/// Whether ORT may re-layout MatMul weights at session creation: faster fp32 MatMul, but a private
/// copy of every such weight (memory and creation time grow by about the weights' size). Null: the
/// compiled graph's choice (metadata <see cref="PrepackingMetadataKey"/>, set by select_session_options),
/// else on.
/// </param>
/// <param name="Optimization">ORT's graph optimization level.</param>
/// <param name="Spinning">
/// Whether ORT's intra-op worker threads spin while waiting for the next parallel op
/// (session.intra_op.allow_spinning, on in ORT). Off by default: on the shared 2-core machine of
/// docs/performance.md the median decode step of the 1.25 GB model was 1.2-1.7x faster without
/// spinning (a spinning worker takes the core time the thread running the serial ops needs); an idle
/// host may do better with it on.
/// </param>
/// <param name="Context">
/// Positions a run may use (prompt and new tokens). Per-position data (the rotary cos/sin tables) is
/// built for this many when the graph is lowered, so a huge configured max_position_embeddings costs
/// nothing unless asked for. Null: the model's max_position_embeddings, at most
/// <see cref="DefaultContextCap"/>. A run setting: the compiled graph (and its snapshot) serves any context.
/// </param>
/// <param name="ContextSource">What errors about <paramref name="Context"/> start with (the CLI gives its option's name).</param>
public sealed record SessionSettings(
    int? IntraOpThreads = null,
    bool? Prepacking = null,
    GraphOptimizationLevel Optimization = GraphOptimizationLevel.ORT_ENABLE_ALL,
    bool Spinning = false,
    int? Context = null,
    string ContextSource = "context")
{
    /// <summary>
    /// The default context when none is asked for: 4096 positions keeps session creation and the
    /// rotary tables small (4096 x head_dim/2 floats each) while covering the prompts and generations
    /// Kiln's CPU runs make; a longer context is one setting away.
    /// </summary>
    public const int DefaultContextCap = 4096;

    /// <summary>Graph metadata key holding the compile stage's prepacking choice, "true" or "false".</summary>
    public const string PrepackingMetadataKey = "session.prepacking";

    public static SessionSettings Default { get; } = new();

    /// <summary>
    /// The context of a run of a model with <paramref name="maxPositions"/> positions: <see cref="Context"/>
    /// when given (positive, at most the model's), else the model's capped at <see cref="DefaultContextCap"/>.
    /// </summary>
    public int ContextFor(int maxPositions)
    {
        if (Context is not { } context) return Math.Min(maxPositions, DefaultContextCap);
        if (context <= 0) throw new KilnException($"{ContextSource}: must be positive, got {context}");
        if (context > maxPositions)
            throw new KilnException($"{ContextSource}: {context} is more than the model's context (config.json max_position_embeddings {maxPositions})");
        return context;
    }

    /// <summary>These settings with every choice left open filled from the compiled graph's metadata.</summary>
    public SessionSettings WithGraphChoices(IReadOnlyDictionary<string, string> metadata) =>
        Prepacking is null && metadata.TryGetValue(PrepackingMetadataKey, out var value) && bool.TryParse(value, out var prepacking)
            ? this with { Prepacking = prepacking }
            : this;
}
