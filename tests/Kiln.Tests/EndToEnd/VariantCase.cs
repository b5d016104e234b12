using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Reference;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// One Llama-family configuration without a transformers oracle: the random checkpoint to write, the
/// sequence length to run, and optionally how to switch the variant's feature off in the reference
/// (so a test can show that the feature visibly changes the logits).
/// </summary>
public sealed record VariantCase(TestModelOptions Options, int Length = 40, Func<ReferenceConfig, ReferenceConfig>? WithoutFeature = null)
{
    /// <summary>
    /// 2 layers, hidden 64, 4 heads over 2 KV heads (head dim 16), vocabulary 100. Weight scale 10
    /// (weights and biases std 0.2, norm gains uniform in [0, 2]) puts attention scores a few units
    /// apart: softmax is neither flat nor one-hot, so masks, rotary angles, biases and gains all move the logits.
    /// </summary>
    public static TestModelOptions Base { get; } = new("llama", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 128,
        Vocab: 100, DType: DType.F32, Seed: 11, MaxPositions: 256, WeightScale: 10);

    public static IReadOnlyDictionary<string, VariantCase> All { get; } = new Dictionary<string, VariantCase>
    {
        // head_dim 16 and theta 1e4 give wavelengths 6.3 (kept), 20 and 63 (blended) and >= 199 (divided by 8)
        // against the band edges 64 / 4 = 16 and 64 / 1 = 64: all three llama3 rules apply.
        ["rope_llama3"] = new(Base with { RopeScaling = TestRopeScaling.Llama3(8, 1, 4, 64) },
            WithoutFeature: c => c with { RopeScaling = null }),
        ["rope_llama3_vs_linear"] = new(Base with { RopeScaling = TestRopeScaling.Llama3(8, 1, 4, 64) },
            WithoutFeature: c => c with { RopeScaling = new ReferenceRopeScaling("linear", 8, 0, 0, 0) }),
        ["rope_linear"] = new(Base with { RopeScaling = TestRopeScaling.Linear(4) }, WithoutFeature: c => c with { RopeScaling = null }),
        ["rope_theta_500000"] = new(Base with { RopeTheta = 500000 }, WithoutFeature: c => c with { RopeTheta = 10000 }),
        ["attention_bias"] = new(Base with { AttentionBias = true }, WithoutFeature: c => c with { QkvBias = false, OutputBias = false }),
        ["mlp_bias"] = new(Base with { MlpBias = true }, WithoutFeature: c => c with { MlpBias = false }),
        ["head_dim_32"] = new(Base with { ExplicitHeadDim = 32 }),
        ["qwen2"] = new(Base with { ModelType = "qwen2", RopeTheta = 1000000 }, WithoutFeature: c => c with { QkvBias = false }),
        ["qwen3"] = new(Base with { ModelType = "qwen3", ExplicitHeadDim = 32 }, WithoutFeature: c => c with { QkNorm = false }),
        ["qwen3_attention_bias"] = new(Base with { ModelType = "qwen3", ExplicitHeadDim = 16, AttentionBias = true },
            WithoutFeature: c => c with { QkvBias = false, OutputBias = false }),
        ["mistral_window_4"] = new(Base with { ModelType = "mistral", SlidingWindow = 4 }, Length: 12,
            WithoutFeature: c => c with { SlidingWindow = null }),
        // Off by one is the likeliest window mistake: transformers' mask lets a query see w keys, itself included.
        ["mistral_window_4_vs_5"] = new(Base with { ModelType = "mistral", SlidingWindow = 4 }, Length: 12,
            WithoutFeature: c => c with { SlidingWindow = 5 }),
        ["tied_embeddings"] = new(Base with { TieEmbeddings = true }),
        ["bf16"] = new(Base with { DType = DType.BF16 }),
        ["f16"] = new(Base with { DType = DType.F16 }),
        ["gqa_4_over_2"] = new(Base),
        ["mqa_4_over_1"] = new(Base with { KvHeads = 1 }),
        ["mha_4_over_4"] = new(Base with { KvHeads = 4 }),
        ["llama_everything_bf16"] = new(Base with
        {
            DType = DType.BF16, KvHeads = 1, ExplicitHeadDim = 32, AttentionBias = true, MlpBias = true, TieEmbeddings = true,
            RopeScaling = TestRopeScaling.Llama3(8, 1, 4, 64),
        }),
    };

    /// <summary>Token ids spread over the vocabulary, repeating none within a case.</summary>
    public long[] Ids => Enumerable.Range(0, Length).Select(i => (long)((i * 37 + 5) % Options.Vocab)).ToArray();

    public long[] Positions => Enumerable.Range(0, Length).Select(i => (long)i).ToArray();
}
