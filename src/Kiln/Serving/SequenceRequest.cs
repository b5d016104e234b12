using Kiln.Runtime;

namespace Kiln.Serving;

/// <summary>
/// What one sequence asks of the <see cref="ServingEngine"/>: its prompt, at most how many new tokens,
/// how to pick each, and which ids end it (the stop id itself is not part of the output).
/// </summary>
public sealed record SequenceRequest(IReadOnlyList<int> PromptIds, int MaxNewTokens, SamplingOptions Sampling, IReadOnlySet<int> StopIds);
