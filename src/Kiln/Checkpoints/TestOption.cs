using System.Text.Json.Nodes;

namespace Kiln.Checkpoints;

/// <summary>
/// The options of <see cref="TestModelOptions"/> as config.json values, named as errors name them (the library's names; the CLI's flags are these with dashes). A
/// family's description passes these to the reads of the fields they fill (<c>test: TestOption.Layers</c>);
/// which field an option fills is the family's business (GPT-2 calls the layer count n_layer).
/// </summary>
public static class TestOption
{
    public static TestValue ModelType { get; } = From("model_type", o => o.ModelType);
    public static TestValue Layers { get; } = From("layers", o => o.Layers);
    public static TestValue Hidden { get; } = From("hidden", o => o.Hidden);
    public static TestValue Heads { get; } = From("heads", o => o.Heads);
    public static TestValue KvHeads { get; } = From("kv_heads", o => o.KvHeads) with { IsSet = o => o.KvHeads != o.Heads };
    public static TestValue Intermediate { get; } = From("intermediate", o => o.Intermediate);
    public static TestValue Vocab { get; } = From("vocab", o => o.Vocab);
    public static TestValue MaxPositions { get; } = From("max_positions", o => o.MaxPositions);

    /// <summary>The head dimension, always written: head_dim, or hidden / heads (then errors about it name heads).</summary>
    public static TestValue HeadDim { get; } = new(o => o.HeadDim)
    {
        Option = o => o.ExplicitHeadDim is null ? "heads" : "head_dim",
        IsSet = o => o.ExplicitHeadDim is not null,
    };

    /// <summary>The head dimension, written only when head_dim is given (for configs whose default is hidden / heads).</summary>
    public static TestValue ExplicitHeadDim { get; } = From("head_dim", o => o.ExplicitHeadDim) with
    {
        IsWritten = o => o.ExplicitHeadDim is not null,
        IsSet = o => o.ExplicitHeadDim is not null,
    };

    public static TestValue TieEmbeddings { get; } = From("tie_embeddings", o => o.TieEmbeddings) with { IsSet = o => o.TieEmbeddings };
    public static TestValue RopeTheta { get; } = From("rope_theta", o => o.RopeTheta) with { IsSet = o => o.RopeTheta != TestModelOptions.DefaultRopeTheta };
    public static TestValue RopeScaling { get; } = From("rope_scaling", o => o.RopeScaling?.ToJson()) with { IsSet = o => o.RopeScaling is not null };
    public static TestValue AttentionBias { get; } = From("attention_bias", o => o.AttentionBias) with { IsSet = o => o.AttentionBias };
    public static TestValue MlpBias { get; } = From("mlp_bias", o => o.MlpBias) with { IsSet = o => o.MlpBias };
    public static TestValue SlidingWindow { get; } = From("sliding_window", o => o.SlidingWindow) with { IsSet = o => o.SlidingWindow is not null };

    /// <summary>Every option, for the check that each one asked for was written (<see cref="TestModelConfig.Describe"/>).</summary>
    public static IReadOnlyList<TestValue> All { get; } =
    [
        ModelType, Layers, Hidden, Heads, KvHeads, Intermediate, Vocab, MaxPositions, HeadDim, ExplicitHeadDim,
        TieEmbeddings, RopeTheta, RopeScaling, AttentionBias, MlpBias, SlidingWindow,
    ];

    private static TestValue From(string option, Func<TestModelOptions, JsonNode?> value) => new(value) { Option = _ => option };
}
