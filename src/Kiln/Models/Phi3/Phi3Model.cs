using Kiln.Export;
using Kiln.Graph;
using static Kiln.Models.AttentionMath;

namespace Kiln.Models.Phi3;

/// <summary>
/// The Phi-3 family in reference form: the primitive math of transformers' modeling_phi3.py (Llama's
/// decoder with q/k/v and gate/up stored fused, RMSNorm as pow/mean/rsqrt, RoPE with rotate_half and
/// optionally LongRoPE, repeat_kv, eager attention with an additive causal mask), traced into the IR.
/// Fusions are the compiler's job.
/// </summary>
public sealed class Phi3Model : ModelDefinition
{
    /// <summary>The family's entry in the registry: its config.json model type and its description.</summary>
    public static ModelFamily Family { get; } = new("phi3", [Phi3Config.ModelType], config => new Phi3Model(Phi3Config.Read(config)));

    private readonly Phi3Weights _weights;

    public Phi3Model(Phi3Config config)
    {
        Config = config;
        _weights = new Phi3Weights(config);
        Facts = new ModelFacts(config.Architecture, Family.Name, config.VocabSize, config.MaxPositions, config.Layers, config.HiddenSize,
            config.Heads, config.KvHeads, config.HeadDim, config.BosTokenId, [.. config.EosTokenIds]);
    }

    public Phi3Config Config { get; }

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

    private static Tensor Linear(Tracer t, Tensor x, LinearWeights linear) => t.Op("linear", [x, t.Parameter(linear.Weight)]);

    // Phi3RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in fp32.
    private Tensor RmsNorm(Tracer t, Tensor x, ModelWeight weight)
    {
        var inputType = x.DType;
        var h = x.Cast(DType.F32);
        var variance = h.Pow(2).Mean(-1, keepdim: true);
        h = h * (variance + Config.RmsNormEps).Rsqrt();
        return t.Parameter(weight) * h.Cast(inputType);
    }

    // Phi3RotaryEmbedding: freqs = positions x inv_freq; emb = cat(freqs, freqs); cos(emb), sin(emb),
    // both times LongRoPE's attention factor.
    private (Tensor Cos, Tensor Sin) RotaryEmbedding(Tracer t, Tensor positionIds)
    {
        using var scope = t.Scope("rotary_emb");
        var invFreq = InverseFrequencies(t, positionIds);
        var freqs = positionIds.Cast(DType.F32).Unsqueeze(-1) * invFreq;
        var emb = Tensor.Cat(-1, freqs, freqs);
        if (Config.LongRope is not { AttentionFactor: not 1.0 } longRope) return (emb.Cos(), emb.Sin());
        return (emb.Cos() * longRope.AttentionFactor, emb.Sin() * longRope.AttentionFactor);
    }

    // LongRoPE's frequencies follow the call: the short factors while max(position_ids) + 1 is within
    // original_max_position_embeddings, the long ones past it. A context that never gets there needs only the short.
    private Tensor InverseFrequencies(Tracer t, Tensor positionIds)
    {
        if (Config.LongRope is not { } longRope) return t.Buffer("rotary_emb.inv_freq", Config.Rope.InverseFrequencies());
        var shortInvFreq = t.Buffer("rotary_emb.inv_freq", longRope.ShortInverseFrequencies());
        if (Config.MaxPositions <= longRope.OriginalMaxPositions) return shortInvFreq;
        var longInvFreq = t.Buffer("rotary_emb.long_inv_freq", longRope.LongInverseFrequencies());
        var seqLen = positionIds.Max([0, 1], keepdim: false) + 1;
        return seqLen.Greater(t.Scalar(longRope.OriginalMaxPositions, DType.I64)).Where(longInvFreq, shortInvFreq);
    }

    private Tensor Attention(Tracer t, Tensor x, Phi3LayerWeights l, Tensor cos, Tensor sin, Tensor mask)
    {
        var c = Config;
        // qkv_proj's rows [q | k | v], each its own projection (see Phi3LayerWeights).
        var q = Linear(t, x, l.Q).View(0, 0, -1, c.HeadDim).Transpose(1, 2);
        var k = Linear(t, x, l.K).View(0, 0, -1, c.HeadDim).Transpose(1, 2);
        var v = Linear(t, x, l.V).View(0, 0, -1, c.HeadDim).Transpose(1, 2);

        (q, k) = (ApplyRotary(q, cos, sin, c.HeadDim), ApplyRotary(k, cos, sin, c.HeadDim));
        k = RepeatKv(k, c.Heads, c.KvHeads, c.HeadDim);
        v = RepeatKv(v, c.Heads, c.KvHeads, c.HeadDim);

        var scores = q.MatMul(k.Transpose(2, 3)) / Math.Sqrt(c.HeadDim);
        scores = scores + mask;
        var probabilities = scores.Softmax(-1);
        var output = probabilities.MatMul(v).Transpose(1, 2).View(0, 0, -1);
        return Linear(t, output, l.O);
    }

    // Phi3MLP: gate_up_proj's rows [gate | up], then up * silu(gate).
    private static Tensor Mlp(Tracer t, Tensor x, Phi3LayerWeights l)
    {
        var gate = Linear(t, x, l.Gate);
        var up = Linear(t, x, l.Up);
        return Linear(t, up * gate.Silu(), l.Down);
    }
}
