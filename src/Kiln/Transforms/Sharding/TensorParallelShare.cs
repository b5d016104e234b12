namespace Kiln.Transforms.Sharding;

/// <summary>
/// Which part of a split dimension one rank holds, for a tensor-parallel world of <see cref="Ranks"/>:
/// whole attention heads, key/value heads (replicated over groups of ranks when there are fewer
/// than ranks, as TensorRT-LLM and vLLM do), or an even slice of a feature dimension.
/// </summary>
public readonly record struct TensorParallelShare(int Ranks, int Rank)
{
    /// <summary>Rank r's first query head and head count; <paramref name="field"/> is config.json's name for the count.</summary>
    public (long Start, long Count) QueryHeads(long heads, string field = "num_attention_heads")
    {
        Require(heads % Ranks == 0, $"{heads} attention heads (config.json {field})");
        var count = heads / Ranks;
        return (Rank * count, count);
    }

    /// <summary>
    /// Rank r's key/value heads: an even share when the ranks divide them; one head when there are
    /// fewer heads than ranks (rank r holds head r / (ranks / heads), the one its query heads read).
    /// </summary>
    public (long Start, long Count) KeyValueHeads(long heads, string field = "num_key_value_heads")
    {
        if (heads % Ranks == 0) return (Rank * (heads / Ranks), heads / Ranks);
        Require(Ranks % heads == 0, $"{heads} key/value heads (config.json {field}), nor are they a divisor of it");
        return (Rank / (Ranks / heads), 1);
    }

    /// <summary>Rank r's even slice of <paramref name="size"/> features, e.g. the MLP's intermediate size.</summary>
    public (long Start, long Count) Features(long size, string what)
    {
        Require(size % Ranks == 0, what);
        var count = size / Ranks;
        return (Rank * count, count);
    }

    private void Require(bool divides, string what)
    {
        if (!divides) throw new KilnException($"tensor parallel degree {Ranks} does not divide the model's {what}");
    }
}
