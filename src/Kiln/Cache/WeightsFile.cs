using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Cache;

/// <summary>
/// One rank's weight products as a safetensors file whose tensors start on 4096-byte pages: the header is
/// padded with spaces so the data section starts on a page, and each product is followed by an explicit
/// U8 padding tensor (<see cref="PadPrefix"/>) up to the next page, so the strict reader's rule that the
/// tensors cover the data section exactly still holds. Mapped, every product is page-aligned.
/// </summary>
public static unsafe class WeightsFile
{
    public const int PageBytes = 4096;

    /// <summary>Names of the padding tensors; a parameter with such a name is not cached.</summary>
    public const string PadPrefix = "__kiln_pad_";

    /// <summary>One product's entry in a weights file: its name, element type, shape and byte length.</summary>
    public readonly record struct Product(string Name, DType DType, long[] Shape, long ByteLength);

    /// <summary>
    /// The file's layout for <paramref name="products"/>: the header (padded so the data starts on a page), each
    /// product's offset from the start of the file (page-aligned) and the file's length. Products go in name order.
    /// </summary>
    public static (byte[] Header, IReadOnlyDictionary<string, long> Offsets, long Length) Layout(IReadOnlyList<Product> products)
    {
        if (products.FirstOrDefault(p => p.Name.StartsWith(PadPrefix, StringComparison.Ordinal)) is { Name: not null } reserved)
            throw new IOException($"parameter {reserved.Name} has a name reserved for padding");
        var ordered = products.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        var header = Header(ordered);
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        var at = 8L + header.Length;
        foreach (var product in ordered)
        {
            offsets[product.Name] = at;
            at += product.ByteLength + Padding(product.ByteLength);
        }
        return (header, offsets, at);
    }

    /// <summary>The products of an opened weights file: every tensor but the padding.</summary>
    public static IEnumerable<TensorInfo> Products(SafetensorsFile file) =>
        file.Tensors.Values.Where(t => !t.Name.StartsWith(PadPrefix, StringComparison.Ordinal));

    /// <summary>The content hash of the whole mapped file (<see cref="ChunkedHash"/>).</summary>
    public static string Hash(SafetensorsFile file)
    {
        Populate(file);
        return ChunkedHash.Of((byte*)file.Mapping.Address, file.Length);
    }

    /// <summary>
    /// Maps every page of the file into the process in one call, instead of one page fault per 4 KiB page as the
    /// hash (and then the kernel) first touches it; huge pages offered first, so pages read back from disk (the
    /// file evicted from the page cache) come as 2 MiB folios, as StagedWeightsFile made them (advice: <see cref="PageAdvice"/>).
    /// </summary>
    public static void Populate(SafetensorsFile file)
    {
        var start = file.Mapping.Address;
        if (file.Length == 0 || start % PageBytes != 0) return;
        PageAdvice.OfferHugePages(start, file.Length);
        PageAdvice.PopulateRead(start, file.Length);
    }

    private static int Padding(long bytes) => (int)((PageBytes - bytes % PageBytes) % PageBytes);

    private static byte[] Header(IReadOnlyList<Product> ordered)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            var offset = 0L;
            void Tensor(string name, DType dtype, IEnumerable<long> shape, long bytes)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (var d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset += bytes);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            for (var i = 0; i < ordered.Count; i++)
            {
                Tensor(ordered[i].Name, ordered[i].DType, ordered[i].Shape, ordered[i].ByteLength);
                if (Padding(ordered[i].ByteLength) is var pad and > 0) Tensor($"{PadPrefix}{i}", DType.U8, [pad], pad);
            }
            json.WriteEndObject();
        }
        // Spaces after the JSON are allowed by the format: they put the data section (after the 8-byte length) on a page.
        while ((buffer.Length + 8) % PageBytes != 0) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
