using System.CommandLine;
using System.Text.Json;
using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Transforms;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln compile`: runs the pipeline and reports what every transform did.</summary>
public static class CompileCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var json = CommonOptions.Json("transforms, ops and timings");
        var dumpDir = new Option<string?>("--dump-dir") { Description = "Write the graph (text and JSON) after export and after every transform into this folder." };
        var verify = new Option<bool>("--verify") { Description = "Run the graph after every transform on a random input and compare with the exported graph; name the first transform that changes the output." };
        var tolerance = new Option<double>("--verify-tolerance") { Description = "Largest absolute logit difference --verify accepts.", DefaultValueFactory = _ => 1e-3 };

        var command = new Command("compile", "Run the transform pipeline on a model and report each transform.")
        {
            model, CommonOptions.Pipeline, CommonOptions.Set, CommonOptions.Quantize, TensorParallel.Degree, json, dumpDir, verify, tolerance,
        };
        CacheOptions.AddTo(command);
        command.SetKilnAction(p =>
        {
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), CommonOptions.Sets(p));
            var modelPath = p.GetValue(model)!;
            using var checkpoint = Checkpoint.Open(modelPath);
            if (p.GetValue(dumpDir) is "") throw new KilnException("--dump-dir: the path is empty");
            var dump = p.GetValue(dumpDir) is { } dir ? new GraphDumper(dir) : null;
            // The export before any transform, for the dump and the verifier: one more than the compile's own.
            var export = dump is not null || p.GetValue(verify) ? ModelCompiler.Export(checkpoint) : null;
            var verifier = p.GetValue(verify) ? new PipelineVerifier(modelPath, export!, p.GetValue(tolerance), world: TensorParallel.World) : null;
            dump?.Write("export", export!);

            CompileResult result;
            try
            {
                result = CacheOptions.Cache(p).Compile(checkpoint, pipeline, (step, _, graph) =>
                {
                    dump?.Write(step.Name, graph);
                    verifier?.Check(step.Name, graph);
                });
            }
            catch (VerificationException e)
            {
                Console.Error.WriteLine($"kiln: error: {e.Message}");
                return CommandRunner.InternalError;
            }

            var report = Report(result, verifier);
            CacheOptions.Report(result.Cache);
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Default.CompileOutput));
                return 0;
            }
            Print(report);
            return 0;
        });
        return command;
    }

    public static CompileOutput Report(CompileResult result, PipelineVerifier? verifier) => new(
        result.Graph.History.Select(h => new CompiledTransform(h.Name, h.Stage, Math.Round(h.Ms, 3), h.Matches, h.NodesAfter, h.Skipped,
            verifier?.Steps.FirstOrDefault(s => s.Transform == h.Name)?.MaxAbsDifference)).ToArray(),
        result.Graph.Nodes.GroupBy(n => n.Op).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
        result.Graph.Nodes.Count,
        Math.Round(result.ExportMs, 3),
        Math.Round(result.PipelineMs, 3),
        result.Cache is { } c ? new CompileCache(c.Status, c.Point, c.Reason, c.Key, Math.Round(c.RestoreMs, 3), Math.Round(c.SavedMs, 3)) : null);

    private static void Print(CompileOutput report)
    {
        var transforms = new Table().AddColumns("#", "transform", "stage", "ms", "matches", "nodes after");
        if (report.Transforms.Any(t => t.VerifyMaxAbsDifference is not null)) transforms.AddColumn("verify |Δ|");
        for (var i = 0; i < report.Transforms.Length; i++)
        {
            var t = report.Transforms[i];
            var row = new List<string> { $"{i + 1}", t.Name, t.Stage, $"{t.Ms:F2}", t.Skipped ? "skipped" : $"{t.Matches}", $"{t.NodesAfter}" };
            if (t.VerifyMaxAbsDifference is { } d) row.Add($"{d:G3}");
            transforms.AddRow(row.Select(Markup.Escape).ToArray());
        }
        AnsiConsole.Write(transforms);
        AnsiConsole.WriteLine($"export {report.ExportMs:F1} ms, pipeline {report.PipelineMs:F1} ms, {report.Nodes} nodes: " +
            string.Join(", ", report.Ops.Select(o => $"{o.Key} {o.Value}")));
    }
}

/// <summary>
/// The JSON of `kiln compile --json` (a stable interface). <see cref="PipelineMs"/> is the time spent
/// in the pipeline, restore included; on a hit, the transforms before the restored point come from the
/// snapshot's history (with their original timings).
/// </summary>
public sealed record CompileOutput(CompiledTransform[] Transforms, Dictionary<string, int> Ops, int Nodes, double ExportMs, double PipelineMs, CompileCache? Cache);

public sealed record CompileCache(string Status, string? Point, string? Reason, string? Key, double RestoreMs, double SavedMs);

public sealed record CompiledTransform(string Name, string Stage, double Ms, int Matches, int NodesAfter, bool Skipped, double? VerifyMaxAbsDifference);
