using System.CommandLine;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Graph.Json;

namespace Kiln.Cli.Commands;

/// <summary>`kiln graph`: prints the exported graph of a checkpoint (reads config.json only).</summary>
public static class GraphCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var format = new Option<string>("--format") { Description = "text or json.", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var command = new Command("graph", "Print the model's exported graph.") { model, format };
        command.SetKilnAction(p =>
        {
            var graph = Export(p.GetValue(model)!);
            Console.Write(p.GetValue(format) == "json" ? GraphSerializer.ToJson(graph) + "\n" : GraphPrinter.Print(graph));
            return 0;
        });
        return command;
    }

    /// <summary>Exports a checkpoint's graph from its config.json (weights are not read).</summary>
    private static ModelGraph Export(string modelPath)
    {
        using var checkpoint = Checkpoint.Open(modelPath);
        return ModelCompiler.Export(checkpoint);
    }
}
