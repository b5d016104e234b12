using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Tests.Reference;

/// <summary>
/// An independent forward pass of Hugging Face Gemma (GemmaForCausalLM) for one sequence, written from
/// transformers' modeling_gemma.py as plain loops in the style of llama2.c's run.c. It shares nothing
/// with Kiln's model, graph or runtime: only the checkpoint reader supplies the raw tensor bytes.
/// Arithmetic is in double, except where transformers' fp32 rounding shows in the logits: the rotary
/// angles (fp32 frequencies times the position) and the embedding normalizer sqrt(hidden_size), a
/// tensor of the hidden dtype.
/// </summary>
public sealed class GemmaReference
{
    private readonly IReadOnlyDictionary<string, double[]> _weights;
    private readonly int _vocab, _hidden, _intermediate, _layers, _heads, _kvHeads, _headDim;
    private readonly double _eps, _theta;
    private readonly bool _tied, _bias;

    private GemmaReference(System.Text.Json.Nodes.JsonObject config, IReadOnlyDictionary<string, double[]> weights)
    {
        int Int(string key, int fallback) => config[key]?.GetValue<int>() ?? fallback;
        _weights = weights;
        _vocab = Int("vocab_size", 256000);
        _hidden = Int("hidden_size", 3072);
        _intermediate = Int("intermediate_size", 24576);
        _layers = Int("num_hidden_layers", 28);
        _heads = Int("num_attention_heads", 16);
        _kvHeads = Int("num_key_value_heads", _heads);
        _headDim = Int("head_dim", 256);
        _eps = config["rms_norm_eps"]?.GetValue<double>() ?? 1e-6;
        _theta = config["rope_theta"]?.GetValue<double>() ?? 10000;
        _tied = config["tie_word_embeddings"]?.GetValue<bool>() ?? true;
        _bias = config["attention_bias"]?.GetValue<bool>() ?? false;
    }

    public int Vocab => _vocab;

    /// <summary>Reads config.json and every weight of the checkpoint in <paramref name="directory"/>, widened to double.</summary>
    public static GemmaReference Load(string directory)
    {
        using var checkpoint = Checkpoint.Open(directory);
        var weights = checkpoint.Tensors.Keys.ToDictionary(name => name, name => ReadTensor(checkpoint, name));
        return new GemmaReference(checkpoint.Config, weights);
    }

    /// <summary>Logits of every position, row-major [ids.Count * vocab], for ids at positions 0, 1, ...</summary>
    public double[] Forward(IReadOnlyList<long> ids)
    {
        int n = ids.Count, d = _headDim, qSize = _heads * d, kvSize = _kvHeads * d;

        // Token embeddings times the normalizer sqrt(hidden_size), itself rounded to fp32 (the hidden dtype).
        var embedding = Weight("model.embed_tokens.weight", (long)_vocab * _hidden);
        var normalizer = (double)(float)Math.Sqrt(_hidden);
        var x = new double[n][];
        for (var t = 0; t < n; t++) x[t] = embedding.AsSpan((int)ids[t] * _hidden, _hidden).ToArray().Select(e => e * normalizer).ToArray();

        var (cos, sin) = RotaryTables(n);
        for (var layer = 0; layer < _layers; layer++)
        {
            var p = $"model.layers.{layer}.";

            // Attention: every position's q, k and v first, since each query reads all earlier keys.
            var q = new double[n][];
            var k = new double[n][];
            var v = new double[n][];
            for (var t = 0; t < n; t++)
            {
                var h = RmsNorm(x[t], Weight(p + "input_layernorm.weight", _hidden));
                q[t] = Linear(h, p + "self_attn.q_proj", qSize, _hidden, _bias);
                k[t] = Linear(h, p + "self_attn.k_proj", kvSize, _hidden, _bias);
                v[t] = Linear(h, p + "self_attn.v_proj", kvSize, _hidden, _bias);
                for (var head = 0; head < _heads; head++) Rotate(q[t], head, cos[t], sin[t]);
                for (var head = 0; head < _kvHeads; head++) Rotate(k[t], head, cos[t], sin[t]);
            }

            var groupSize = _heads / _kvHeads;
            var scale = 1.0 / Math.Sqrt(d);
            for (var t = 0; t < n; t++)
            {
                var attended = new double[qSize];
                for (var head = 0; head < _heads; head++)
                {
                    // repeat_kv: query heads [g * groupSize, (g + 1) * groupSize) share key/value head g (one for MQA).
                    var kvHead = head / groupSize;
                    var scores = new double[t + 1];
                    var max = double.NegativeInfinity;
                    for (var j = 0; j <= t; j++)
                    {
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
                Add(x[t], Linear(attended, p + "self_attn.o_proj", _hidden, qSize, _bias));
            }

            // MLP (GeGLU): down(gelu_tanh(gate(h)) * up(h)).
            for (var t = 0; t < n; t++)
            {
                var h = RmsNorm(x[t], Weight(p + "post_attention_layernorm.weight", _hidden));
                var gate = Linear(h, p + "mlp.gate_proj", _intermediate, _hidden, false);
                var up = Linear(h, p + "mlp.up_proj", _intermediate, _hidden, false);
                for (var i = 0; i < _intermediate; i++) gate[i] = GeluTanh(gate[i]) * up[i];
                Add(x[t], Linear(gate, p + "mlp.down_proj", _hidden, _intermediate, false));
            }
        }

        // Final norm and output layer (the embedding itself when tie_word_embeddings is set, Gemma's default).
        var outputLayer = _tied ? embedding : Weight("lm_head.weight", (long)_vocab * _hidden);
        var logits = new double[(long)n * _vocab];
        for (var t = 0; t < n; t++)
        {
            var h = RmsNorm(x[t], Weight("model.norm.weight", _hidden));
            for (var token = 0; token < _vocab; token++)
            {
                var sum = 0.0;
                for (var i = 0; i < _hidden; i++) sum += outputLayer[token * _hidden + i] * h[i];
                logits[(long)t * _vocab + token] = sum;
            }
        }
        return logits;
    }

    /// <summary>0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): gelu_pytorch_tanh.</summary>
    private static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>x * rsqrt(mean(x^2) + eps) * (1 + w) (GemmaRMSNorm: the stored gain is w, centred on zero).</summary>
    private double[] RmsNorm(double[] x, double[] w)
    {
        var sumSquares = 0.0;
        foreach (var value in x) sumSquares += value * value;
        var inverseRms = 1 / Math.Sqrt(sumSquares / x.Length + _eps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = x[i] * inverseRms * (1 + w[i]);
        return y;
    }

    /// <summary>Rotary embedding of one head in place, rotate_half layout: channel i pairs with channel i + d/2.</summary>
    private void Rotate(double[] x, int head, double[] cos, double[] sin)
    {
        var half = _headDim / 2;
        var start = head * _headDim;
        for (var i = 0; i < half; i++)
        {
            var first = x[start + i];
            var second = x[start + half + i];
            x[start + i] = first * cos[i] - second * sin[i];
            x[start + half + i] = second * cos[i] + first * sin[i];
        }
    }

    /// <summary>cos and sin of position x frequency; frequencies 1 / theta^(2i/d) and the angle in fp32, as transformers computes them.</summary>
    private (double[][] Cos, double[][] Sin) RotaryTables(int positions)
    {
        var frequencies = new float[_headDim / 2];
        for (var i = 0; i < frequencies.Length; i++) frequencies[i] = 1f / MathF.Pow((float)_theta, (float)(2 * i) / _headDim);
        var cos = new double[positions][];
        var sin = new double[positions][];
        for (var t = 0; t < positions; t++)
        {
            cos[t] = frequencies.Select(f => Math.Cos((float)t * f)).ToArray();
            sin[t] = frequencies.Select(f => Math.Sin((float)t * f)).ToArray();
        }
        return (cos, sin);
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
