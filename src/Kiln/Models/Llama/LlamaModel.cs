using Kiln.Export;
using Kiln.Graph;
using static Kiln.Models.AttentionMath;

namespace Kiln.Models.Llama;

/// <summary>
/// The Llama family (Llama 1/2/3, Mistral, Qwen2, Qwen3) in reference form: the same primitive math as
/// transformers' modeling_llama.py (RMSNorm as pow/mean/rsqrt, RoPE with rotate_half, repeat_kv,
/// eager attention with an additive causal mask), traced into the IR. Fusions are the compiler's job.
/// </summary>
public sealed class LlamaModel : ModelDefinition
{
    /// <summary>The family's entry in the registry: its config.json model types and its description.</summary>
    public static ModelFamily Family { get; } = new("llama", LlamaConfig.ModelTypes, config => new LlamaModel(LlamaConfig.Read(config)));

    private readonly LlamaWeights _weights;

    public LlamaModel(LlamaConfig config)
    {
        Config = config;
        _weights = new LlamaWeights(config);
        Facts = new ModelFacts(config.Architecture, Family.Name, config.VocabSize, config.MaxPositions, config.Layers, config.HiddenSize,
            config.Heads, config.KvHeads, config.HeadDim, config.BosTokenId, [.. config.EosTokenIds]);
    }

    public LlamaConfig Config { get; }

    public override ModelFacts Facts { get; }

    public override WeightLayout Layout => _weights.Layout;

    protected override Tensor Forward(Tracer t, Tensor inputIds, Tensor positionIds)
    {
        var (c, w) = (Config, _weights);
        var hidden = t.Op("gather", [t.Parameter(w.Embedding), inputIds], new() { ["axis"] = 0L });

        var (cos, sin) = RotaryEmbedding(t, positionIds);
        var mask = CausalMask(t, positionIds, Config.SlidingWindow);
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

    // LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in fp32.
    private Tensor RmsNorm(Tracer t, Tensor x, ModelWeight weight)
    {
        var inputType = x.DType;
        var h = x.Cast(DType.F32);
        var variance = h.Pow(2).Mean(-1, keepdim: true);
        h = h * (variance + Config.RmsNormEps).Rsqrt();
        return t.Parameter(weight) * h.Cast(inputType);
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

    private Tensor Attention(Tracer t, Tensor x, LlamaLayerWeights l, Tensor cos, Tensor sin, Tensor mask)
    {
        var c = Config;
        var q = Linear(t, x, l.Q).View(0, 0, -1, c.HeadDim);
        var k = Linear(t, x, l.K).View(0, 0, -1, c.HeadDim);
        var v = Linear(t, x, l.V).View(0, 0, -1, c.HeadDim);
        if (l.QNorm is { } qNorm && l.KNorm is { } kNorm)
        {
            q = RmsNorm(t, q, qNorm);
            k = RmsNorm(t, k, kNorm);
        }
        q = q.Transpose(1, 2);
        k = k.Transpose(1, 2);
        v = v.Transpose(1, 2);

        (q, k) = (ApplyRotary(q, cos, sin, c.HeadDim), ApplyRotary(k, cos, sin, c.HeadDim));
        k = RepeatKv(k, c.Heads, c.KvHeads, c.HeadDim);
        v = RepeatKv(v, c.Heads, c.KvHeads, c.HeadDim);

        var scores = q.MatMul(k.Transpose(2, 3)) / Math.Sqrt(c.HeadDim);
        scores = scores + mask;
        var probabilities = scores.Softmax(-1);
        var output = probabilities.MatMul(v).Transpose(1, 2).View(0, 0, -1);
        return Linear(t, output, l.O);
    }

    private static Tensor Mlp(Tracer t, Tensor x, LlamaLayerWeights l)
    {
        var gate = Linear(t, x, l.Gate);
        var up = Linear(t, x, l.Up);
        return Linear(t, gate.Silu() * up, l.Down);
    }
}
