using System.Text.RegularExpressions;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// llama.cpp's tensor names of a llama or gemma model (token_embd, blk.N.attn_q, ...; the two name their
/// modules alike) and the Hugging Face names of the same tensors (model.embed_tokens,
/// model.layers.N.self_attn.q_proj, ...), as llama.cpp's
/// convert_hf_to_gguf.py maps them the other way.
/// </summary>
public static partial class GgufTensorNames
{
    private static readonly Dictionary<string, string> Global = new(StringComparer.Ordinal)
    {
        ["token_embd"] = "model.embed_tokens",
        ["output_norm"] = "model.norm",
        ["output"] = "lm_head",
    };

    private static readonly Dictionary<string, string> PerLayer = new(StringComparer.Ordinal)
    {
        ["attn_norm"] = "input_layernorm",
        ["attn_q"] = "self_attn.q_proj",
        ["attn_k"] = "self_attn.k_proj",
        ["attn_v"] = "self_attn.v_proj",
        ["attn_output"] = "self_attn.o_proj",
        ["ffn_norm"] = "post_attention_layernorm",
        ["ffn_gate"] = "mlp.gate_proj",
        ["ffn_up"] = "mlp.up_proj",
        ["ffn_down"] = "mlp.down_proj",
    };

    /// <summary>The Hugging Face name of a llama tensor, or null for a name this map does not know.</summary>
    public static string? ToHuggingFace(string name)
    {
        var match = NamePattern().Match(name);
        if (!match.Success) return null;
        var (layer, module, suffix) = (match.Groups["layer"], match.Groups["module"].Value, match.Groups["suffix"].Value);
        if (!layer.Success) return Global.TryGetValue(module, out var global) ? $"{global}.{suffix}" : null;
        // A layer number as llama.cpp writes it: no sign, no leading zero.
        if (layer.Value.Length > 1 && layer.Value[0] == '0') return null;
        return PerLayer.TryGetValue(module, out var part) ? $"model.layers.{layer.Value}.{part}.{suffix}" : null;
    }

    /// <summary>The llama.cpp name of a Hugging Face tensor name (<see cref="ToHuggingFace"/> reversed), or null.</summary>
    public static string? FromHuggingFace(string name)
    {
        var dot = name.LastIndexOf('.');
        if (dot < 0) return null;
        var (module, suffix) = (name[..dot], name[(dot + 1)..]);
        if (Global.FirstOrDefault(e => e.Value == module).Key is { } global) return $"{global}.{suffix}";
        var match = LayerModule().Match(module);
        if (!match.Success) return null;
        var part = PerLayer.FirstOrDefault(e => e.Value == match.Groups["part"].Value).Key;
        return part is null ? null : $"blk.{match.Groups["layer"].Value}.{part}.{suffix}";
    }

    /// <summary>
    /// Whether llama.cpp stored the tensor's rows permuted for its rotary layout: the q and k projections of a
    /// llama model (its converter leaves Gemma's as Hugging Face has them).
    /// </summary>
    public static bool IsRotaryPermuted(string architecture, string name) => architecture == "llama" && QueryOrKey().IsMatch(name);

    /// <summary>Whether the tensor is an RMSNorm gain (attn_norm, ffn_norm, output_norm): Gemma's converter stores them as 1 + w.</summary>
    public static bool IsNormGain(string name) => NormGain().IsMatch(name);

    [GeneratedRegex(@"^(?:blk\.(?<layer>[0-9]{1,4})\.)?(?<module>[a-z_]+)\.(?<suffix>weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^model\.layers\.(?<layer>[0-9]+)\.(?<part>.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex LayerModule();

    [GeneratedRegex(@"^blk\.[0-9]+\.attn_[qk]\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex QueryOrKey();

    [GeneratedRegex(@"^(?:blk\.[0-9]+\.(?:attn|ffn)_norm|output_norm)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex NormGain();
}
