using Kiln.Graph;

namespace Kiln.Benchmarks;

/// <summary>How many weight bytes one decode step (one new token) reads from memory.</summary>
public static class DecodeWeightTraffic
{
    /// <summary>
    /// Bytes as the session holds them (a 16-bit weight the kernels read as stored counts 2 bytes an
    /// element, an upcast one 4). Every parameter is read whole, except one read only by gather (an untied embedding table),
    /// of which a step reads one row. A tied embedding is one parameter that the output head also
    /// reads, so it counts once, whole.
    /// </summary>
    public static long BytesPerToken(ModelGraph graph)
    {
        long total = 0;
        foreach (var parameter in graph.Parameters)
        {
            var type = parameter.Value.Type;
            var sizes = type.Shape.ToSizes();
            var bytes = sizes.Aggregate(1L, (a, b) => a * b) * type.DType.ByteSize();
            var readers = parameter.Value.Users;
            var lookupOnly = readers.Count > 0 && readers.All(n => n.Op == "gather") && sizes.Length > 0 && sizes[0] > 0;
            total += lookupOnly ? bytes / sizes[0] : bytes;
        }
        return total;
    }
}
