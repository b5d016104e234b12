using System.Globalization;

namespace Kiln.Graph;

/// <summary>
/// The extra inputs and outputs of a graph that keeps a key/value cache (written by insert_kv_cache,
/// read by the runtime): per layer i, inputs past_key.i and past_value.i [batch, kv_heads, max_seq,
/// head_dim] and outputs present_key.i and present_value.i of the same shape; shared inputs seqlens_k
/// [batch] (tokens so far, including the new ones, minus one) and total_sequence_length [].
/// </summary>
public sealed record KvCacheSignature(int Layers, int KvHeads, int HeadDim)
{
    public const string SeqLensInput = "seqlens_k";
    public const string TotalLengthInput = "total_sequence_length";
    public const string MaxSeqSymbol = "max_seq";

    private const string FlagKey = "kv_cache";
    private const string LayersKey = "kv_cache.layers";
    private const string KvHeadsKey = "kv_cache.kv_heads";
    private const string HeadDimKey = "kv_cache.head_dim";

    public static string PastKey(int layer) => $"past_key.{layer}";
    public static string PastValue(int layer) => $"past_value.{layer}";
    public static string PresentKey(int layer) => $"present_key.{layer}";
    public static string PresentValue(int layer) => $"present_value.{layer}";

    public void WriteTo(ModelGraph graph)
    {
        graph.Metadata[FlagKey] = "true";
        graph.Metadata[LayersKey] = Layers.ToString(CultureInfo.InvariantCulture);
        graph.Metadata[KvHeadsKey] = KvHeads.ToString(CultureInfo.InvariantCulture);
        graph.Metadata[HeadDimKey] = HeadDim.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The graph's cache signature, or null for a graph without a cache.</summary>
    public static KvCacheSignature? ReadFrom(ModelGraph graph)
    {
        if (graph.Metadata.GetValueOrDefault(FlagKey) != "true") return null;
        int Read(string key) => graph.Metadata.TryGetValue(key, out var text) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : throw new GraphException($"metadata {key}: missing or not a positive integer in a kv_cache graph");
        return new KvCacheSignature(Read(LayersKey), Read(KvHeadsKey), Read(HeadDimKey));
    }
}
