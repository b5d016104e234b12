using System.CommandLine;
using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Cli.Commands;

/// <summary>`kiln testmodel`: writes a random-weight checkpoint in Hugging Face layout, for tests and benchmarks.</summary>
public static class TestModelCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "Model family.", DefaultValueFactory = _ => "llama" };
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
        var output = new Option<string>("--out", "-o") { Description = "Folder to create (must not exist or be empty).", Required = true };

        var command = new Command("testmodel", "Write a random-weight checkpoint in Hugging Face layout.")
        {
            family, layers, hidden, heads, kvHeads, intermediate, vocab, maxPositions, dtype, seed, tie, output,
        };
        command.SetKilnAction(p =>
        {
            var dtypeName = p.GetValue(dtype)!;
            if (!DTypeExtensions.TryParse(dtypeName, out var weightType))
                throw new KilnException($"--dtype: '{dtypeName}' is not a dtype (f32, f16 or bf16)");
            var options = new TestModelOptions(p.GetValue(family)!, p.GetValue(layers), p.GetValue(hidden), p.GetValue(heads),
                p.GetValue(kvHeads) ?? p.GetValue(heads), p.GetValue(intermediate), p.GetValue(vocab), weightType, p.GetValue(seed),
                p.GetValue(tie), p.GetValue(maxPositions));
            var directory = p.GetValue(output)!;
            RandomCheckpointWriter.Write(options, directory);
            Console.WriteLine($"wrote {directory}");
            return 0;
        });
        return command;
    }
}
