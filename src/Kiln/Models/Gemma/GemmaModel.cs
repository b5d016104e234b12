using Kiln.Export;
using Kiln.Graph;

namespace Kiln.Models.Gemma;

/// <summary>
/// The Gemma family in reference form: the primitive math of transformers' modeling_gemma.py (the
/// embedding scaled by sqrt(hidden_size), GemmaRMSNorm as pow/mean/rsqrt in fp32 times 1 + w, RoPE with
/// rotate_half, repeat_kv, eager attention with an additive causal mask, the GeGLU MLP with the tanh
/// GELU), traced into the IR. Fusions are the compiler's job.
/// </summary>
public sealed class GemmaModel : ModelDefinition
{
    // The additive mask value for blocked positions: torch.finfo(float32).min, as transformers uses.
    private const double MaskedScore = -3.4028234663852886e38;

    /// <summary>The family's entry in the registry: its config.json model type and its description.</summary>
    public static ModelFamily Family { get; } = new("gemma", [GemmaConfig.ModelType], config => new GemmaModel(GemmaConfig.Read(config)));

    private readonly GemmaWeights _weights;

    public GemmaModel(GemmaConfig config)
    {
        Config = config;
        _weights = new GemmaWeights(config);
        Facts = new ModelFacts(config.Architecture, Family.Name, config.VocabSize, config.MaxPositions, config.Layers, config.HiddenSize,
            config.Heads, config.KvHeads, config.HeadDim, config.BosTokenId, [.. config.EosTokenIds]);
    }

    public GemmaConfig Config { get; }

    public override ModelFacts Facts { get; }

    public override WeightLayout Layout => _weights.Layout;

    protected override Tensor Forward(Tracer t, Tensor inputIds, Tensor positionIds)
    {
        var (c, w) = (Config, _weights);
        var hidden = t.Op("gather", [t.Parameter(w.Embedding), inputIds], new() { ["axis"] = 0L });
        // The normalizer is a tensor of the hidden dtype: sqrt(hidden_size) rounded to it, as transformers does.
        hidden = hidden * t.Scalar(Math.Sqrt(c.HiddenSize), hidden.DType);

        var (cos, sin) = RotaryEmbedding(t, positionIds);
        var mask = CausalMask(t, positionIds);
        for (var layer = 0; layer < c.Layers; layer++)
        {
            using var scope = t.Scope($"layers.{layer}");
            var l = w.Layers[layer];
            var residual = hidden;
            hidden = RmsNorm(t, hidden, l.InputNorm);
            hidden = residual + Attention(t, hidden, l, cos, sin, mask);
            residual = hidden;
            hidden = RmsNorm(t, hidden, l.PostAttentionNorm);
            hidden = residual + Mlp(t, hidden, l);
        }
        hidden = RmsNorm(t, hidden, w.Norm);
        return t.Op("linear", [hidden, t.Parameter(w.Output)]);
    }

    private static Tensor Linear(Tracer t, Tensor x, LinearWeights linear) =>
        linear.Bias is { } bias ? t.Op("linear", [x, t.Parameter(linear.Weight), t.Parameter(bias)]) : t.Op("linear", [x, t.Parameter(linear.Weight)]);

    // GemmaRMSNorm: (x * rsqrt(mean(x^2) + eps)) * (1 + w), in fp32, then cast back. The gain parameter is
    // already 1 + w in fp32 (GemmaWeights.NormGain), and Gemma multiplies before the cast, Llama after.
    private Tensor RmsNorm(Tracer t, Tensor x, ModelWeight gain)
    {
        var inputType = x.DType;
        var h = x.Cast(DType.F32);
        var variance = h.Pow(2).Mean(-1, keepdim: true);
        h = h * (variance + Config.RmsNormEps).Rsqrt();
        return (h * t.Parameter(gain)).Cast(inputType);
    }

    // GemmaRotaryEmbedding: freqs = positions x inv_freq; emb = cat(freqs, freqs); cos(emb), sin(emb).
    private (Tensor Cos, Tensor Sin) RotaryEmbedding(Tracer t, Tensor positionIds)
    {
        using var scope = t.Scope("rotary_emb");
        var invFreq = t.Buffer("rotary_emb.inv_freq", Config.Rope.InverseFrequencies());
        var freqs = positionIds.Cast(DType.F32).Unsqueeze(-1) * invFreq;
        var emb = Tensor.Cat(-1, freqs, freqs);
        return (emb.Cos(), emb.Sin());
    }

    // Query i sees key j when j <= i; others get the minimum float.
    private static Tensor CausalMask(Tracer t, Tensor positionIds)
    {
        using var scope = t.Scope("causal_mask");
        var allowed = positionIds.Unsqueeze(1).LessOrEqual(positionIds.Unsqueeze(-1));
        var mask = allowed.Where(t.Scalar(0, DType.F32), t.Scalar(MaskedScore, DType.F32));
        return mask.Unsqueeze(1);
    }

    private Tensor Attention(Tracer t, Tensor x, GemmaLayerWeights l, Tensor cos, Tensor sin, Tensor mask)
    {
        var c = Config;
        // head_dim is Gemma's own setting: q is heads x head_dim wide, which need not be hidden_size.
        var q = Linear(t, x, l.Q).View(0, 0, -1, c.HeadDim).Transpose(1, 2);
        var k = Linear(t, x, l.K).View(0, 0, -1, c.HeadDim).Transpose(1, 2);
        var v = Linear(t, x, l.V).View(0, 0, -1, c.HeadDim).Transpose(1, 2);

        (q, k) = (ApplyRotary(q, cos, sin), ApplyRotary(k, cos, sin));
        k = RepeatKv(k);
        v = RepeatKv(v);

        var scores = q.MatMul(k.Transpose(2, 3)) / Math.Sqrt(c.HeadDim);
        scores = scores + mask;
        var probabilities = scores.Softmax(-1);
        var output = probabilities.MatMul(v).Transpose(1, 2).View(0, 0, -1);
        return Linear(t, output, l.O);
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

    // [batch, kv_heads, seq, d] -> [batch, heads, seq, d], each KV head repeated for its query group (MQA: one KV head).
    private Tensor RepeatKv(Tensor x)
    {
        var groups = Config.Heads / Config.KvHeads;
        if (groups == 1) return x;
        return x.Unsqueeze(2).Expand(1, 1, groups, 1, 1).View(0, Config.Heads, -1, Config.HeadDim);
    }

    // GemmaMLP: down(gelu_tanh(gate(x)) * up(x)), GeGLU.
    private static Tensor Mlp(Tracer t, Tensor x, GemmaLayerWeights l)
    {
        var gate = Linear(t, x, l.Gate);
        var up = Linear(t, x, l.Up);
        return Linear(t, Activations.GeluTanh(gate) * up, l.Down);
    }
}
