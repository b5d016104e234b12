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
public sealed record SessionSettings(
    int? IntraOpThreads = null,
    bool? Prepacking = null,
    GraphOptimizationLevel Optimization = GraphOptimizationLevel.ORT_ENABLE_ALL,
    bool Spinning = false)
{
    /// <summary>Graph metadata key holding the compile stage's prepacking choice, "true" or "false".</summary>
    public const string PrepackingMetadataKey = "session.prepacking";

    public static SessionSettings Default { get; } = new();

    /// <summary>These settings with every choice left open filled from the compiled graph's metadata.</summary>
    public SessionSettings WithGraphChoices(IReadOnlyDictionary<string, string> metadata) =>
        Prepacking is null && metadata.TryGetValue(PrepackingMetadataKey, out var value) && bool.TryParse(value, out var prepacking)
            ? this with { Prepacking = prepacking }
            : this;
}
