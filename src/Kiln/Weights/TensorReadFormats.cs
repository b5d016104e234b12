using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// One checkpoint tensor: its shape (of the weights, for a tensor stored in blocks), its dtype or block format
/// in the file, and the dtype the compiled graph reads it as.
/// </summary>
/// <param name="Read">The dtype of the parameters made from it ("bf16"; "bf16, f32" when several differ), or "unused".</param>
public sealed record TensorReadFormat(string Name, long[] Shape, string Stored, string Read);

public static class TensorReadFormats
{
    public const string Unused = "unused";

    /// <summary>Every tensor of <paramref name="checkpoint"/> in name order, against the compiled <paramref name="graph"/>'s parameters.</summary>
    public static IReadOnlyList<TensorReadFormat> Of(Checkpoint checkpoint, ModelGraph graph)
    {
        var readAs = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var parameter in graph.Parameters)
        {
            foreach (var source in parameter.Recipe.Sources)
            {
                if (!readAs.TryGetValue(source, out var set)) readAs[source] = set = new SortedSet<string>(StringComparer.Ordinal);
                set.Add(parameter.Value.DType.Name());
            }
        }
        return [.. checkpoint.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => new TensorReadFormat(
            t.Name, t.WeightShape, t.StoredFormat, readAs.TryGetValue(t.Name, out var set) ? string.Join(", ", set) : Unused))];
    }
}
