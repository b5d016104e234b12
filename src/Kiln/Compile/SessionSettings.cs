using Microsoft.ML.OnnxRuntime;

namespace Kiln.Compile;

/// <summary>How <see cref="CompiledSession"/> configures ONNX Runtime.</summary>
/// <param name="IntraOpThreads">Threads for one op; null leaves ORT's default, the number of physical cores.</param>
/// <param name="Prepacking">
/// Whether ORT may re-layout MatMul weights at session creation: faster fp32 MatMul, but a private
/// copy of every such weight (memory and creation time grow by about the weights' size).
/// </param>
/// <param name="Optimization">ORT's graph optimization level.</param>
public sealed record SessionSettings(
    int? IntraOpThreads = null,
    bool Prepacking = true,
    GraphOptimizationLevel Optimization = GraphOptimizationLevel.ORT_ENABLE_ALL)
{
    public static SessionSettings Default { get; } = new();
}
