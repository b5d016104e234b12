using System.CommandLine;
using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Models;

namespace Kiln.Cli.Commands;

/// <summary>`kiln testmodel`: writes a random-weight checkpoint in Hugging Face layout, for tests and benchmarks.</summary>
public static class TestModelCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family")
        {
            Description = $"Model family: {string.Join(", ", FamilyRegistry.Families.Select(f => f.Name))}.",
            DefaultValueFactory = _ => "llama",
        };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", Required = true };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size.", Required = true };
        var heads = new Option<int>("--heads") { Description = "Attention heads.", Required = true };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads (default: --heads)." };
        var intermediate = new Option<int>("--intermediate") { Description = "MLP intermediate size.", Required = true };
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size.", Required = true };
        var maxPositions = new Option<int>("--max-positions") { Description = "Context length (max_position_embeddings).", DefaultValueFactory = _ => 2048 };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype: f32, f16 or bf16.", DefaultValueFactory = _ => "f32" };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 0 };
        var tie = new Option<bool>("--tie-embeddings") { Description = "Share the embedding with the output layer (no lm_head.weight)." };
        var modelType = new Option<string?>("--model-type")
        {
            Description = $"config.json model_type, one of the family's: {string.Join(", ", FamilyRegistry.ModelTypes)} (default: the family's first; docs/models.md says how they differ).",
        };
        var headDim = new Option<int?>("--head-dim") { Description = "Head dimension, written as head_dim (default: --hidden / --heads)." };
        var attentionBias = new Option<bool>("--attention-bias") { Description = "Biases on the q, k, v and o projections (llama, qwen3, gemma)." };
        var mlpBias = new Option<bool>("--mlp-bias") { Description = "Biases on the gate, up and down projections (llama)." };
        var ropeTheta = new Option<double>("--rope-theta") { Description = "Rotary base (rope_theta).", DefaultValueFactory = _ => 10000 };
        var ropeScaling = new Option<string?>("--rope-scaling")
        {
            Description = "rope_scaling: linear:FACTOR or llama3:FACTOR,LOW,HIGH,ORIGINAL (e.g. llama3:8,1,4,8192 for " +
                "factor, low_freq_factor, high_freq_factor, original_max_position_embeddings). Not for mistral.",
        };
        var slidingWindow = new Option<int?>("--sliding-window") { Description = "Attention window in tokens (sliding_window of mistral and phi3; default: none)." };
        var weightScale = new Option<double>("--weight-scale")
        {
            Description = "Widens the random values: weights and biases get standard deviation 0.02 x SCALE, norm gains 1 +/- 0.1 x SCALE.",
            DefaultValueFactory = _ => 1,
        };
        var sparse = new Option<bool>("--sparse")
        {
            Description = "All-zero weights in a sparse file region (no disk use, written in seconds at any size): " +
                "real headers for timing the pipeline on large configurations; the model's output is meaningless.",
        };
        var output = new Option<string>("--out", "-o") { Description = "Folder to create (must not exist or be empty).", Required = true };

        var command = new Command("testmodel", "Write a random-weight checkpoint in Hugging Face layout.")
        {
            family, layers, hidden, heads, kvHeads, intermediate, vocab, maxPositions, dtype, seed, tie,
            modelType, headDim, attentionBias, mlpBias, ropeTheta, ropeScaling, slidingWindow, weightScale, sparse, output,
        };
        command.SetKilnAction(p =>
        {
            var dtypeName = p.GetValue(dtype)!;
            if (!DTypeExtensions.TryParse(dtypeName, out var weightType))
                throw new KilnException($"--dtype: '{dtypeName}' is not a dtype (f32, f16 or bf16)");
            var familyName = p.GetValue(family)!;
            var modelTypeName = p.GetValue(modelType) ?? FamilyRegistry.Named(familyName)?.ModelTypes[0] ?? familyName;
            var options = new TestModelOptions(familyName, p.GetValue(layers), p.GetValue(hidden), p.GetValue(heads),
                p.GetValue(kvHeads) ?? p.GetValue(heads), p.GetValue(intermediate), p.GetValue(vocab), weightType, p.GetValue(seed),
                p.GetValue(tie), p.GetValue(maxPositions), p.GetValue(ropeTheta), modelTypeName, p.GetValue(headDim),
                p.GetValue(attentionBias), p.GetValue(mlpBias), p.GetValue(ropeScaling) is { } scaling ? TestRopeScaling.Parse(scaling) : null,
                p.GetValue(slidingWindow), p.GetValue(weightScale));
            var directory = p.GetValue(output)!;
            RandomCheckpointWriter.Write(options, directory, p.GetValue(sparse));
            Console.WriteLine($"wrote {directory}");
            return 0;
        });
        return command;
    }
}
