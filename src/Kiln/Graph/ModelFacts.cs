using System.Globalization;

namespace Kiln.Graph;

/// <summary>
/// What the runtime and the snapshot cache need to know of a model, read from its config.json by the
/// family's description and carried by the graph (<see cref="ModelGraph.Model"/>, saved in graph.json):
/// the vocabulary, the context length, the sizes that shape the key/value cache, and the special tokens.
/// </summary>
public sealed record ModelFacts(
    string Architecture,
    string Family,
    int VocabSize,
    int ContextLength,
    int Layers,
    int Hidden,
    int Heads,
    int KvHeads,
    int HeadDim,
    int? BosTokenId,
    int[] EosTokenIds)
{
    /// <summary>Each fact by its graph.json name, as text: for printing and for naming the first difference.</summary>
    public IEnumerable<(string Name, string Value)> Fields()
    {
        yield return ("architecture", Architecture);
        yield return ("family", Family);
        yield return ("vocab_size", Text(VocabSize));
        yield return ("context_length", Text(ContextLength));
        yield return ("layers", Text(Layers));
        yield return ("hidden", Text(Hidden));
        yield return ("heads", Text(Heads));
        yield return ("kv_heads", Text(KvHeads));
        yield return ("head_dim", Text(HeadDim));
        yield return ("bos_token_id", BosTokenId is { } bos ? Text(bos) : "none");
        yield return ("eos_token_ids", $"[{string.Join(", ", EosTokenIds.Select(Text))}]");
    }

    /// <summary>The first fact that differs from <paramref name="expected"/>, or null when none does.</summary>
    public (string Name, string Found, string Expected)? DifferenceFrom(ModelFacts expected)
    {
        foreach (var (found, wanted) in Fields().Zip(expected.Fields()))
        {
            if (found.Value != wanted.Value) return (found.Name, found.Value, wanted.Value);
        }
        return null;
    }

    // A record compares arrays by reference; facts compare by what they say.
    public bool Equals(ModelFacts? other) => other is not null && Fields().SequenceEqual(other.Fields());

    public override int GetHashCode() => HashCode.Combine(Architecture, Family, VocabSize, ContextLength, Layers, HeadDim);

    public override string ToString() => string.Join(", ", Fields().Select(f => $"{f.Name} = {f.Value}"));

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
