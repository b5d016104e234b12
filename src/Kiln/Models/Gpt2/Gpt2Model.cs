using Kiln.Export;
using Kiln.Graph;
using static Kiln.Models.AttentionMath;

namespace Kiln.Models.Gpt2;

/// <summary>
/// GPT-2 (GPT2LMHeadModel) in reference form: the same primitive math as transformers' modeling_gpt2.py
/// with eager attention (learned position embeddings added to the token embeddings, LayerNorm as
/// mean/sub/pow/rsqrt with gain and bias, multi-head attention with a causal mask, gelu_new written
/// out with tanh, the output layer tied to wte), traced into the IR. Fusions are the compiler's job.
/// </summary>
public sealed class Gpt2Model : ModelDefinition
{
    /// <summary>The family's entry in the registry: its config.json model type and its description.</summary>
    public static ModelFamily Family { get; } = new("gpt2", [Gpt2Config.ModelType], config => new Gpt2Model(Gpt2Config.Read(config)))
    {
        BaseModelPrefix = "transformer.",
        ShardedFields = new("n_head", "n_head", "n_inner"),
    };

    private readonly Gpt2Weights _weights;

    public Gpt2Model(Gpt2Config config)
    {
        Config = config;
        _weights = new Gpt2Weights(config);
        Facts = new ModelFacts(config.Architecture, Family.Name, config.VocabSize, config.MaxPositions, config.Layers, config.HiddenSize,
            config.Heads, config.Heads, config.HeadDim, config.BosTokenId, [.. config.EosTokenIds]);
    }

    public Gpt2Config Config { get; }

    public override ModelFacts Facts { get; }

    public override WeightLayout Layout => _weights.Layout;

    protected override Tensor Forward(Tracer t, Tensor inputIds, Tensor positionIds)
    {
        var (c, w) = (Config, _weights);
        var tokens = t.Op("gather", [t.Parameter(w.TokenEmbedding), inputIds], new() { ["axis"] = 0L });
        var positions = t.Op("gather", [t.Parameter(w.PositionEmbedding), positionIds], new() { ["axis"] = 0L });
        var hidden = tokens + positions;

        var mask = CausalMask(t, positionIds);
        for (var layer = 0; layer < c.Layers; layer++)
        {
            using var scope = t.Scope($"h.{layer}");
            var l = w.Layers[layer];
            var residual = hidden;
            hidden = LayerNorm(t, hidden, l.Norm1);
            hidden = Attention(t, hidden, l, layer, mask) + residual;
            residual = hidden;
            hidden = LayerNorm(t, hidden, l.Norm2);
            hidden = residual + Mlp(t, hidden, l);
        }
        hidden = LayerNorm(t, hidden, w.FinalNorm);
        return t.Op("linear", [hidden, t.Parameter(w.Output)]);
    }

    // Conv1D: x @ W + b, with W read transposed to [out, in] by its load recipe.
    private static Tensor Linear(Tracer t, Tensor x, LinearWeights linear) =>
        t.Op("linear", [x, t.Parameter(linear.Weight), t.Parameter(linear.Bias!)]);

    // nn.LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance.
    private Tensor LayerNorm(Tracer t, Tensor x, LayerNormWeights norm)
    {
        var centered = x - x.Mean(-1, keepdim: true);
        var variance = centered.Pow(2).Mean(-1, keepdim: true);
        var normalized = centered * (variance + Config.LayerNormEps).Rsqrt();
        return normalized * t.Parameter(norm.Weight) + t.Parameter(norm.Bias);
    }

    private Tensor Attention(Tracer t, Tensor x, Gpt2LayerWeights l, int layer, Tensor mask)
    {
        var d = Config.HeadDim;
        var q = Linear(t, x, l.Q).View(0, 0, -1, d).Transpose(1, 2);
        var k = Linear(t, x, l.K).View(0, 0, -1, d).Transpose(1, 2);
        var v = Linear(t, x, l.V).View(0, 0, -1, d).Transpose(1, 2);

        var scores = q.MatMul(k.Transpose(2, 3));
        // scale_attn_weights divides by sqrt(head_dim), scale_attn_by_inverse_layer_idx by layer + 1: one divisor here.
        var divisor = (Config.ScaleAttentionWeights ? Math.Sqrt(d) : 1) * (Config.ScaleByInverseLayer ? layer + 1 : 1);
        if (divisor != 1) scores = scores / divisor;
        var probabilities = (scores + mask).Softmax(-1);
        var output = probabilities.MatMul(v).Transpose(1, 2).View(0, 0, -1);
        return Linear(t, output, l.Projection);
    }

    private static Tensor Mlp(Tracer t, Tensor x, Gpt2LayerWeights l) =>
        Linear(t, Activations.GeluTanh(Linear(t, x, l.Up)), l.Down);
}
