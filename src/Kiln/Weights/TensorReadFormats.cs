using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Weights;

/// <summary>
/// One checkpoint tensor: its shape (of the weights, for a tensor stored in blocks), its dtype or block format
/// in the file, and the format the compiled graph's kernels read it in.
/// </summary>
/// <param name="Read">
/// The format of the parameters made from it: a dtype ("bf16"), the quantization scheme of a product's packed
/// weight ("int8"; "int4_sym (MatMulNBits)" on ONNX Runtime's MatMulNBits), several comma-separated when they
/// differ ("f32, int4" for a tied embedding's lookup and output layer), or "unused".
/// </param>
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
                set.Add(FormatOf(parameter));
            }
        }
        return [.. checkpoint.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => new TensorReadFormat(
            t.Name, t.WeightShape, t.StoredFormat, readAs.TryGetValue(t.Name, out var set) ? string.Join(", ", set) : Unused))];
    }

    // A quantized product's weight is packed bytes (u8) in its scheme's blocks: the scheme says what is read.
    private static string FormatOf(ParameterSpec parameter) =>
        parameter.Value.Users.FirstOrDefault(n => n.Op is "quantized_linear" or "matmul_nbits") switch
        {
            { Op: "quantized_linear" } product => product.String("scheme"),
            { Op: "matmul_nbits" } => $"{QuantScheme.Int4Sym.Name()} (MatMulNBits)",
            _ => parameter.Value.DType.Name(),
        };
}
