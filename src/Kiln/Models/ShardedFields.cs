namespace Kiln.Models;

/// <summary>config.json's names for the attention heads, key/value heads and MLP width of a family.</summary>
public sealed record ShardedFields(string Heads, string KeyValueHeads, string Intermediate)
{
    public static ShardedFields Llama { get; } = new("num_attention_heads", "num_key_value_heads", "intermediate_size");
}
