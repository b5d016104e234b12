using System.Globalization;
using Kiln.Export;
using Kiln.Graph;
using Kiln.Ops;

namespace Kiln.Models;

/// <summary>
/// The Llama family (Llama 1/2/3, Mistral, Qwen2, Qwen3) in reference form: the same primitive math as
/// transformers' modeling_llama.py (RMSNorm as pow/mean/rsqrt, RoPE with rotate_half, repeat_kv,
/// eager attention with an additive causal mask), traced into the IR. Fusions are the compiler's job.
/// </summary>
public sealed class LlamaModel(LlamaConfig config)
{
    // The additive mask value for blocked positions: torch.finfo(float32).min, as transformers uses.
    private const double MaskedScore = -3.4028234663852886e38;

    public LlamaConfig Config { get; } = config;

    public ModelGraph Trace(OpRegistry registry)
    {
        var c = Config;
        var t = new Tracer(registry);
        var signature = Signature();
        var inputs = signature.Inputs.ToDictionary(i => i.Name, i => t.Input(i.Name, i.Type.DType, [.. i.Type.Shape.Dims]));
        var (inputIds, positionIds) = (inputs["input_ids"], inputs["position_ids"]);

        var embedding = t.Parameter("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        var hidden = t.Op("gather", [embedding, inputIds], new() { ["axis"] = 0L });

        var (cos, sin) = RotaryEmbedding(t, positionIds);
        var mask = CausalMask(t, positionIds);
        for (var layer = 0; layer < c.Layers; layer++)
        {
            using var scope = t.Scope($"layers.{layer}");
            var prefix = $"model.layers.{layer}";
            var residual = hidden;
            hidden = RmsNorm(t, hidden, $"{prefix}.input_layernorm.weight", c.HiddenSize);
            hidden = residual + Attention(t, hidden, prefix + ".self_attn", cos, sin, mask);
            residual = hidden;
            hidden = RmsNorm(t, hidden, $"{prefix}.post_attention_layernorm.weight", c.HiddenSize);
            hidden = residual + Mlp(t, hidden, prefix + ".mlp");
        }
        hidden = RmsNorm(t, hidden, "model.norm.weight", c.HiddenSize);
        var head = c.TieWordEmbeddings ? embedding : t.Parameter("lm_head.weight", c.VocabSize, c.HiddenSize);
        t.Output(t.Op("linear", [hidden, head]));

        var g = t.Graph;
        foreach (var (key, value) in signature.Metadata) g.Metadata[key] = value;
        return g;
    }

    /// <summary>The metadata, inputs and logits type of <see cref="Trace"/>'s graph, without tracing it.</summary>
    public ModelSignature Signature()
    {
        var c = Config;
        var tokens = Shape.Of(Dim.Sym("batch"), Dim.Sym("seq"));
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["architecture"] = c.Architecture,
            ["family"] = "llama",
            ["vocab_size"] = c.VocabSize.ToString(CultureInfo.InvariantCulture),
            ["max_position_embeddings"] = c.MaxPositions.ToString(CultureInfo.InvariantCulture),
        };
        return new ModelSignature(metadata,
            [("input_ids", new TensorType(DType.I64, tokens)), ("position_ids", new TensorType(DType.I64, tokens))],
            new TensorType(DType.F32, Shape.Of(Dim.Sym("batch"), Dim.Sym("seq"), Dim.Of(c.VocabSize))));
    }

    private Tensor Linear(Tracer t, Tensor x, string name, int outFeatures, int inFeatures, bool bias)
    {
        var weight = t.Parameter(name + ".weight", outFeatures, inFeatures);
        return bias ? t.Op("linear", [x, weight, t.Parameter(name + ".bias", outFeatures)]) : t.Op("linear", [x, weight]);
    }

    // LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in fp32.
    private Tensor RmsNorm(Tracer t, Tensor x, string weightName, int size)
    {
        var inputType = x.DType;
        var h = x.Cast(DType.F32);
        var variance = h.Pow(2).Mean(-1, keepdim: true);
        h = h * (variance + Config.RmsNormEps).Rsqrt();
        return t.Parameter(weightName, size) * h.Cast(inputType);
    }

    // LlamaRotaryEmbedding: freqs = positions x inv_freq; emb = cat(freqs, freqs); cos(emb), sin(emb).
    private (Tensor Cos, Tensor Sin) RotaryEmbedding(Tracer t, Tensor positionIds)
    {
        using var scope = t.Scope("rotary_emb");
        var invFreq = t.Buffer("rotary_emb.inv_freq", Config.Rope.InverseFrequencies());
        var freqs = positionIds.Cast(DType.F32).Unsqueeze(-1) * invFreq;
        var emb = Tensor.Cat(-1, freqs, freqs);
        return (emb.Cos(), emb.Sin());
    }

    // Query i sees key j when j <= i (and, with a sliding window w, j > i - w); others get the minimum float.
    private Tensor CausalMask(Tracer t, Tensor positionIds)
    {
        using var scope = t.Scope("causal_mask");
        var queryPositions = positionIds.Unsqueeze(-1);
        var keyPositions = positionIds.Unsqueeze(1);
        var allowed = keyPositions.LessOrEqual(queryPositions);
        if (Config.SlidingWindow is { } window)
            allowed = allowed.And(keyPositions.Greater(queryPositions - window));
        var mask = allowed.Where(t.Scalar(0, DType.F32), t.Scalar(MaskedScore, DType.F32));
        return mask.Unsqueeze(1);
    }

    private Tensor Attention(Tracer t, Tensor x, string prefix, Tensor cos, Tensor sin, Tensor mask)
    {
        var c = Config;
        var q = Linear(t, x, prefix + ".q_proj", c.Heads * c.HeadDim, c.HiddenSize, c.AttentionBias).View(0, 0, -1, c.HeadDim);
        var k = Linear(t, x, prefix + ".k_proj", c.KvHeads * c.HeadDim, c.HiddenSize, c.AttentionBias).View(0, 0, -1, c.HeadDim);
        var v = Linear(t, x, prefix + ".v_proj", c.KvHeads * c.HeadDim, c.HiddenSize, c.AttentionBias).View(0, 0, -1, c.HeadDim);
        if (c.QkNorm)
        {
            q = RmsNorm(t, q, prefix + ".q_norm.weight", c.HeadDim);
            k = RmsNorm(t, k, prefix + ".k_norm.weight", c.HeadDim);
        }
        q = q.Transpose(1, 2);
        k = k.Transpose(1, 2);
        v = v.Transpose(1, 2);

        (q, k) = (ApplyRotary(q, cos, sin), ApplyRotary(k, cos, sin));
        k = RepeatKv(k);
        v = RepeatKv(v);

        var scores = q.MatMul(k.Transpose(2, 3)) / Math.Sqrt(c.HeadDim);
        scores = scores + mask;
        var probabilities = scores.Softmax(-1);
        var output = probabilities.MatMul(v).Transpose(1, 2).View(0, 0, -1);
        return Linear(t, output, prefix + ".o_proj", c.HiddenSize, c.Heads * c.HeadDim, c.OutputProjectionBias);
    }

    // q * cos + rotate_half(q) * sin, with cos/sin broadcast over heads.
    private Tensor ApplyRotary(Tensor x, Tensor cos, Tensor sin) =>
        x * cos.Unsqueeze(1) + RotateHalf(x) * sin.Unsqueeze(1);

    private Tensor RotateHalf(Tensor x)
    {
        var half = Config.HeadDim / 2;
        var x1 = x.Slice(-1, 0, half);
        var x2 = x.Slice(-1, half, long.MaxValue);
        return Tensor.Cat(-1, -x2, x1);
    }

    // [batch, kv_heads, seq, d] -> [batch, heads, seq, d], each KV head repeated for its query group.
    private Tensor RepeatKv(Tensor x)
    {
        var groups = Config.Heads / Config.KvHeads;
        if (groups == 1) return x;
        return x.Unsqueeze(2).Expand(1, 1, groups, 1, 1).View(0, Config.Heads, -1, Config.HeadDim);
    }

    private Tensor Mlp(Tracer t, Tensor x, string prefix)
    {
        var c = Config;
        var gate = Linear(t, x, prefix + ".gate_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias);
        var up = Linear(t, x, prefix + ".up_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias);
        return Linear(t, gate.Silu() * up, prefix + ".down_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias);
    }
}
