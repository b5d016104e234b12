using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Tests.Reference;

/// <summary>
/// An independent forward pass of the Hugging Face Llama family (Llama, Mistral, Qwen2, Qwen3) for
/// one sequence, written from transformers' modeling semantics as plain loops in the style of
/// llama2.c's run.c, so every step can be read and checked line by line. It shares nothing with
/// Kiln's model, graph or runtime: only the checkpoint reader supplies the raw tensor bytes.
/// Arithmetic is in double; the rotary frequencies alone are computed in fp32 with transformers'
/// operation order, because transformers computes them in fp32 and the rounding of an angle
/// (position x frequency) is visible in the logits.
/// </summary>
public sealed class LlamaReference
{
    private readonly IReadOnlyDictionary<string, double[]> _weights;

    private LlamaReference(ReferenceConfig config, IReadOnlyDictionary<string, double[]> weights)
    {
        Config = config;
        _weights = weights;
    }

    public ReferenceConfig Config { get; }

    /// <summary>Reads config.json and every weight of the checkpoint in <paramref name="directory"/>, widened to double.</summary>
    public static LlamaReference Load(string directory)
    {
        using var checkpoint = Checkpoint.Open(directory);
        var config = ReferenceConfig.Read(checkpoint.Config);
        var weights = checkpoint.Tensors.Keys.ToDictionary(name => name, name => ReadTensor(checkpoint, name));
        return new LlamaReference(config, weights);
    }

    /// <summary>The same weights under another config: lets a test show that a setting changes the logits.</summary>
    public LlamaReference WithConfig(ReferenceConfig config) => new(config, _weights);

    /// <summary>Logits of every position, row-major [ids.Count * vocab]; positions feed the rotary embedding only.</summary>
    public double[] Forward(IReadOnlyList<long> ids, IReadOnlyList<long> positions)
    {
        var c = Config;
        int n = ids.Count, d = c.HeadDim, qSize = c.Heads * d, kvSize = c.KvHeads * d;

        // Token embeddings: one row of embed_tokens per id.
        var embedding = Weight("model.embed_tokens.weight", (long)c.Vocab * c.Hidden);
        var x = new double[n][];
        for (var t = 0; t < n; t++) x[t] = embedding.AsSpan((int)ids[t] * c.Hidden, c.Hidden).ToArray();

        var (cos, sin) = RotaryTables(positions);
        for (var layer = 0; layer < c.Layers; layer++)
        {
            var p = $"model.layers.{layer}.";

            // Attention: every position's q, k and v first, since each query reads all earlier keys.
            var q = new double[n][];
            var k = new double[n][];
            var v = new double[n][];
            for (var t = 0; t < n; t++)
            {
                var h = RmsNorm(x[t], Weight(p + "input_layernorm.weight", c.Hidden));
                q[t] = Linear(h, p + "self_attn.q_proj", qSize, c.Hidden, c.QkvBias);
                k[t] = Linear(h, p + "self_attn.k_proj", kvSize, c.Hidden, c.QkvBias);
                v[t] = Linear(h, p + "self_attn.v_proj", kvSize, c.Hidden, c.QkvBias);
                if (c.QkNorm)
                {
                    // Qwen3: RMSNorm over each head's d channels, before the rotary embedding.
                    for (var head = 0; head < c.Heads; head++) NormalizeHead(q[t], head, Weight(p + "self_attn.q_norm.weight", d));
                    for (var head = 0; head < c.KvHeads; head++) NormalizeHead(k[t], head, Weight(p + "self_attn.k_norm.weight", d));
                }
                for (var head = 0; head < c.Heads; head++) Rotate(q[t], head, cos[t], sin[t]);
                for (var head = 0; head < c.KvHeads; head++) Rotate(k[t], head, cos[t], sin[t]);
            }

            var groupSize = c.Heads / c.KvHeads;
            var scale = 1.0 / Math.Sqrt(d);
            for (var t = 0; t < n; t++)
            {
                var attended = new double[qSize];
                for (var head = 0; head < c.Heads; head++)
                {
                    // repeat_kv: query heads [g * groupSize, (g + 1) * groupSize) share key/value head g.
                    var kvHead = head / groupSize;
                    var scores = new double[t + 1];
                    var max = double.NegativeInfinity;
                    for (var j = 0; j <= t; j++)
                    {
                        if (!Visible(t, j))
                        {
                            scores[j] = double.NegativeInfinity;
                            continue;
                        }
                        var dot = 0.0;
                        for (var e = 0; e < d; e++) dot += q[t][head * d + e] * k[j][kvHead * d + e];
                        scores[j] = dot * scale;
                        max = Math.Max(max, scores[j]);
                    }
                    var sum = 0.0;
                    for (var j = 0; j <= t; j++)
                    {
                        scores[j] = Math.Exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (var j = 0; j <= t; j++)
                    {
                        var weight = scores[j] / sum;
                        for (var e = 0; e < d; e++) attended[head * d + e] += weight * v[j][kvHead * d + e];
                    }
                }
                Add(x[t], Linear(attended, p + "self_attn.o_proj", c.Hidden, qSize, c.OutputBias));
            }

            // MLP: down(silu(gate(h)) * up(h)).
            for (var t = 0; t < n; t++)
            {
                var h = RmsNorm(x[t], Weight(p + "post_attention_layernorm.weight", c.Hidden));
                var gate = Linear(h, p + "mlp.gate_proj", c.Intermediate, c.Hidden, c.MlpBias);
                var up = Linear(h, p + "mlp.up_proj", c.Intermediate, c.Hidden, c.MlpBias);
                for (var i = 0; i < c.Intermediate; i++) gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
                Add(x[t], Linear(gate, p + "mlp.down_proj", c.Hidden, c.Intermediate, c.MlpBias));
            }
        }

        // Final norm and output layer (the embedding itself when tie_word_embeddings is set).
        var outputLayer = c.TieEmbeddings ? embedding : Weight("lm_head.weight", (long)c.Vocab * c.Hidden);
        var logits = new double[(long)n * c.Vocab];
        for (var t = 0; t < n; t++)
        {
            var h = RmsNorm(x[t], Weight("model.norm.weight", c.Hidden));
            for (var token = 0; token < c.Vocab; token++)
            {
                var sum = 0.0;
                for (var i = 0; i < c.Hidden; i++) sum += outputLayer[token * c.Hidden + i] * h[i];
                logits[(long)t * c.Vocab + token] = sum;
            }
        }
        return logits;
    }

    /// <summary>
    /// The causal mask: query t sees key j when j &lt;= t and, with a sliding window w, t - j &lt; w.
    /// transformers builds it from the sequence index (cache_position), not from position_ids.
    /// </summary>
    private bool Visible(int t, int j) => j <= t && (Config.SlidingWindow is not { } window || t - j < window);

    /// <summary>x * rsqrt(mean(x^2) + eps) * gain (LlamaRMSNorm).</summary>
    private double[] RmsNorm(double[] x, double[] gain)
    {
        var sumSquares = 0.0;
        foreach (var value in x) sumSquares += value * value;
        var inverseRms = 1 / Math.Sqrt(sumSquares / x.Length + Config.RmsNormEps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = gain[i] * (x[i] * inverseRms);
        return y;
    }

    /// <summary>RMSNorm of one head's channels of <paramref name="x"/>, in place.</summary>
    private void NormalizeHead(double[] x, int head, double[] gain)
    {
        var d = Config.HeadDim;
        var normalized = RmsNorm(x.AsSpan(head * d, d).ToArray(), gain);
        normalized.CopyTo(x, head * d);
    }

    /// <summary>
    /// Rotary embedding of one head in place, in transformers' rotate_half layout: channel i pairs
    /// with channel i + d/2, both turned by the angle of frequency i.
    /// </summary>
    private void Rotate(double[] x, int head, double[] cos, double[] sin)
    {
        var half = Config.HeadDim / 2;
        var start = head * Config.HeadDim;
        for (var i = 0; i < half; i++)
        {
            var first = x[start + i];
            var second = x[start + half + i];
            x[start + i] = first * cos[i] - second * sin[i];
            x[start + half + i] = second * cos[i] + first * sin[i];
        }
    }

    /// <summary>cos and sin of position x frequency, per position and frequency; the angle is an fp32 product as in transformers.</summary>
    private (double[][] Cos, double[][] Sin) RotaryTables(IReadOnlyList<long> positions)
    {
        var frequencies = InverseFrequencies();
        var cos = new double[positions.Count][];
        var sin = new double[positions.Count][];
        for (var t = 0; t < positions.Count; t++)
        {
            cos[t] = new double[frequencies.Length];
            sin[t] = new double[frequencies.Length];
            for (var i = 0; i < frequencies.Length; i++)
            {
                var angle = (float)positions[t] * frequencies[i];
                cos[t][i] = Math.Cos(angle);
                sin[t][i] = Math.Sin(angle);
            }
        }
        return (cos, sin);
    }

    /// <summary>
    /// 1 / theta^(2i/d) for i &lt; d/2, then the rope_scaling rule. fp32 throughout, in transformers'
    /// order of operations (rope_utils: default, linear, llama3).
    /// </summary>
    private float[] InverseFrequencies()
    {
        var d = Config.HeadDim;
        var frequencies = new float[d / 2];
        for (var i = 0; i < d / 2; i++)
        {
            var exponent = (float)(2 * i) / d;
            frequencies[i] = 1f / MathF.Pow((float)Config.RopeTheta, exponent);
        }
        if (Config.RopeScaling is not { } scaling) return frequencies;

        var factor = (float)scaling.Factor;
        if (scaling.Type == "linear")
        {
            // Linear interpolation: every frequency divided by the factor (positions stretched by it).
            for (var i = 0; i < frequencies.Length; i++) frequencies[i] /= factor;
            return frequencies;
        }

        // llama3 (Llama 3.1): wavelengths longer than original / low_freq_factor are divided by the factor,
        // shorter than original / high_freq_factor are kept, and the band between is blended by
        // smooth = (original / wavelength - low) / (high - low).
        var original = (float)scaling.OriginalMaxPositions;
        var lowFreqWavelength = (float)(scaling.OriginalMaxPositions / scaling.LowFreqFactor);
        var highFreqWavelength = (float)(scaling.OriginalMaxPositions / scaling.HighFreqFactor);
        for (var i = 0; i < frequencies.Length; i++)
        {
            var frequency = frequencies[i];
            // torch evaluates scalar / tensor as reciprocal(tensor) * scalar.
            var wavelength = 1f / frequency * (float)(2 * Math.PI);
            if (wavelength < highFreqWavelength) continue;
            if (wavelength > lowFreqWavelength)
            {
                frequencies[i] = frequency / factor;
                continue;
            }
            var smooth = (1f / wavelength * original - (float)scaling.LowFreqFactor) / (float)(scaling.HighFreqFactor - scaling.LowFreqFactor);
            frequencies[i] = (1 - smooth) * frequency / factor + smooth * frequency;
        }
        return frequencies;
    }

    /// <summary>y = W x (+ b), W stored [out, in] row-major as nn.Linear keeps it.</summary>
    private double[] Linear(double[] x, string name, int outFeatures, int inFeatures, bool bias)
    {
        var w = Weight(name + ".weight", (long)outFeatures * inFeatures);
        var b = bias ? Weight(name + ".bias", outFeatures) : null;
        var y = new double[outFeatures];
        for (var o = 0; o < outFeatures; o++)
        {
            var sum = b?[o] ?? 0.0;
            for (var i = 0; i < inFeatures; i++) sum += w[o * inFeatures + i] * x[i];
            y[o] = sum;
        }
        return y;
    }

    private static void Add(double[] x, double[] y)
    {
        for (var i = 0; i < x.Length; i++) x[i] += y[i];
    }

    private double[] Weight(string name, long elements)
    {
        if (!_weights.TryGetValue(name, out var weight)) throw new InvalidOperationException($"{name}: not in the checkpoint");
        if (weight.Length != elements) throw new InvalidOperationException($"{name}: {weight.Length} elements, expected {elements}");
        return weight;
    }

    /// <summary>A tensor widened to double; bf16 and f16 widen exactly, as transformers upcasts them to fp32.</summary>
    private static double[] ReadTensor(Checkpoint checkpoint, string name)
    {
        var bytes = checkpoint.GetBytes(name);
        return checkpoint.Tensor(name).DType switch
        {
            DType.F32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(f => (double)f).ToArray(),
            DType.BF16 => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(bits => (double)FloatConversion.BFloat16ToSingle(bits)).ToArray(),
            DType.F16 => MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(half => (double)half).ToArray(),
            var other => throw new NotSupportedException($"{name}: dtype {other}"),
        };
    }
}
