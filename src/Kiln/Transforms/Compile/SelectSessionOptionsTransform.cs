using Kiln.Compile;
using Kiln.Graph;

namespace Kiln.Transforms.Compile;

/// <summary>Settings of <see cref="SelectSessionOptionsTransform"/>.</summary>
public sealed record SelectSessionOptionsConfig : TransformConfig
{
    /// <summary>
    /// Pre-pack weights only when the weights of ORT matrix products total at most this many bytes
    /// (4 GiB): packed weights make ORT's fp32 MatMul faster for prefill and decode
    /// (docs/performance.md), so only the memory of the copy limits it.
    /// </summary>
    public long PrepackingMaxWeightBytes { get; init; } = 4L << 30;
}

/// <summary>
/// compile: chooses ONNX Runtime session options for this graph and records them in its metadata
/// (<see cref="SessionSettings.PrepackingMetadataKey"/>), which the session follows unless the user
/// overrides them. Pre-packing copies every weight of an ORT MatMul (<c>linear</c> and <c>matmul</c>
/// nodes; memory and session creation grow by the weights' size) and makes those products faster at
/// every row count, so it is on unless there is nothing to pack (every product runs on Kiln's
/// kernel, see use_kiln_linear) or the copy would be too large. A graph with <c>matmul_nbits</c> always
/// pre-packs: MatMulNBits without its packed weights measured 100 times slower (docs/weights.md).
/// </summary>
public sealed class SelectSessionOptionsTransform : Transform<SelectSessionOptionsConfig>
{
    public override string Name => "select_session_options";

    public override Stage Stage => Stage.Compile;

    protected override int Rewrite(ModelGraph graph, SelectSessionOptionsConfig config, TransformContext context)
    {
        var weightBytes = graph.Parameters.Where(p => p.Value.Users.Any(n => n.Op is "linear" or "matmul"))
            .Sum(p => p.Value.Shape.ToSizes().Aggregate(1L, (a, b) => a * b) * p.Value.DType.ByteSize());
        var prepacking = (weightBytes > 0 && weightBytes <= config.PrepackingMaxWeightBytes) || graph.Nodes.Any(n => n.Op == "matmul_nbits");
        graph.Metadata[SessionSettings.PrepackingMetadataKey] = prepacking ? "true" : "false";
        return 1;
    }
}
