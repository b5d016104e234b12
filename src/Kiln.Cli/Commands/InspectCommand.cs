using System.CommandLine;
using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Transforms;
using Kiln.Weights;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// `kiln inspect`: what a checkpoint holds, from its config and safetensors headers, and the dtype the
/// compiled graph reads each tensor as (the pipeline runs on headers only).
/// </summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var json = CommonOptions.Json("the summary");
        var command = new Command("inspect", "Summarize a checkpoint: architecture, parameters, dtypes, files, graph size, and each tensor's stored and read dtype.")
        {
            model, CommonOptions.Pipeline, CommonOptions.Set, json,
        };
        command.SetKilnAction(p =>
        {
            using var checkpoint = Checkpoint.Open(p.GetValue(model)!);
            var graph = ModelCompiler.Export(checkpoint);
            var compiled = ModelCompiler.Compile(checkpoint, PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), p.GetValue(CommonOptions.Set))).Graph;
            var summary = Summarize(checkpoint, graph, compiled);
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(summary, CliJsonContext.Default.InspectOutput));
                return 0;
            }
            var table = new Table().AddColumn("field").AddColumn("value");
            table.AddRow("folder", Markup.Escape(checkpoint.Directory));
            table.AddRow("architecture", Markup.Escape(summary.Architecture));
            table.AddRow("parameters", $"{summary.Parameters:N0}");
            table.AddRow("tensors", $"{summary.Tensors:N0}");
            table.AddRow("dtypes", string.Join(", ", summary.Dtypes.Select(d => $"{d.Key} ({d.Value} tensors)")));
            foreach (var file in summary.Files) table.AddRow("file", Markup.Escape($"{file.Name} ({file.Bytes:N0} bytes)"));
            table.AddRow("graph", $"{summary.GraphNodes:N0} nodes, {summary.GraphParameters} parameters, {summary.GraphBuffers} buffers");
            AnsiConsole.Write(table);
            var tensors = new Table().AddColumns("tensor", "shape", "stored", "read as");
            foreach (var t in summary.TensorFormats)
                tensors.AddRow(Markup.Escape(t.Name), Markup.Escape($"[{string.Join(", ", t.Shape)}]"), t.Stored, t.Read);
            AnsiConsole.Write(tensors);
            return 0;
        });
        return command;
    }

    /// <param name="graph">The exported graph.</param>
    /// <param name="compiled">The same graph after the pipeline: what the session reads.</param>
    public static InspectOutput Summarize(Checkpoint checkpoint, ModelGraph graph, ModelGraph compiled) => new(
        graph.Model?.Architecture ?? "?",
        checkpoint.Tensors.Values.Sum(t => t.WeightCount),
        checkpoint.Tensors.Count,
        checkpoint.Tensors.Values.GroupBy(t => t.StoredFormat).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
        checkpoint.WeightFiles.Select(f => new InspectFile(f.RelativeName, f.Size)).ToArray(),
        graph.Nodes.Count,
        graph.Parameters.Count,
        graph.Buffers.Count,
        [.. TensorReadFormats.Of(checkpoint, compiled)]);
}

public sealed record InspectOutput(string Architecture, long Parameters, int Tensors, Dictionary<string, int> Dtypes, InspectFile[] Files,
    int GraphNodes, int GraphParameters, int GraphBuffers, TensorReadFormat[] TensorFormats);

public sealed record InspectFile(string Name, long Bytes);
