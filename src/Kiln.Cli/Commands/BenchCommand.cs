using System.CommandLine;
using System.Text.Json;
using Kiln.Benchmarks;
using Kiln.Cache;
using Kiln.Transforms;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln bench`: prefill and decode speed of a model against the machine's memory bandwidth.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length (seeded random ids, BOS first).", DefaultValueFactory = _ => 128 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens to generate (greedy, no stop tokens).", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs after one warm-up; medians are reported.", DefaultValueFactory = _ => 5 };
        var prepacking = new Option<bool?>("--prepacking") { Description = "Force ORT weight pre-packing on or off (default: the compiled model's choice)." };
        var spinning = new Option<bool>("--spinning") { Description = "Let ORT's intra-op threads spin between ops (default: off, measured faster in docs/performance.md)." };
        var json = CommonOptions.Json("the benchmark result");

        var command = new Command("bench", "Measure prefill and decode speed, peak memory and the decode bound set by memory bandwidth.")
        {
            model, promptTokens, newTokens, CommonOptions.Context, CommonOptions.Threads, TensorParallel.Degree, repeats, prepacking, spinning, CommonOptions.Pipeline, CommonOptions.Set, CommonOptions.Quantize, json,
        };
        // Uncached unless a root is named: a second run with the same --cache-dir decodes from the mapped weights tier.
        command.Options.Add(CacheOptions.Directory);
        command.SetKilnAction(p =>
        {
            var cache = p.GetValue(CacheOptions.Directory) is null ? null : new PipelineCache(new CacheSettings(CacheOptions.Root(p)), TensorParallel.World);
            var options = new BenchmarkOptions(p.GetValue(promptTokens), p.GetValue(newTokens), TensorParallel.Threads(p.GetValue(CommonOptions.Threads)),
                p.GetValue(repeats), p.GetValue(prepacking), Spinning: p.GetValue(spinning), Context: p.GetValue(CommonOptions.Context), ContextSource: "--context");
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), CommonOptions.Sets(p));
            var result = QuantizeProgressBar.Around(progress => ModelBenchmark.Run(p.GetValue(model)!, options, pipeline, cache, progress, TensorParallel.World));
            CommonOptions.NoteContext(options.Context, result.Context, result.MaxPositions);
            foreach (var warning in result.Warnings) Console.Error.WriteLine($"kiln: warning: {warning}");
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, CliJsonContext.Default.BenchmarkResult));
                return 0;
            }
            Print(result);
            return 0;
        });
        return command;
    }

    private static void Print(BenchmarkResult r)
    {
        AnsiConsole.WriteLine($"{r.Model}: {r.PromptTokens} prompt + {r.NewTokens} new tokens, {r.Threads} threads, " +
            $"prepacking {(r.Prepacking ? "on" : "off")}, spinning {(r.Spinning ? "on" : "off")}, median of {r.Repeats} (load {r.LoadMs:F0} ms)");
        var table = new Table().AddColumns("metric", "value");
        table.AddRow("prefill", $"{r.PrefillTokensPerS:F1} tokens/s");
        table.AddRow("time to first token", $"{r.TtftMs:F1} ms");
        table.AddRow("decode", $"{r.DecodeTokensPerS:F1} tokens/s");
        table.AddRow("decode bound", $"{r.DecodeBoundTokensPerS:F1} tokens/s");
        table.AddRow("decode / bound", $"{r.DecodeFractionOfBound:P1}");
        table.AddRow("weight format", r.WeightFormat);
        table.AddRow("weight bytes per token", $"{r.WeightBytesPerToken / 1e6:F2} MB");
        table.AddRow("read bandwidth", $"{r.ReadBandwidthBytesPerS / 1e9:F1} GB/s");
        table.AddRow("peak RSS", $"{r.PeakRssBytes / 1e6:F0} MB");
        if (r.TensorParallel > 1)
        {
            table.AddRow("tensor-parallel ranks", $"{r.TensorParallel}");
            table.AddRow("peak RSS per rank", string.Join(", ", r.RankPeakRssBytes.Select(b => $"{b / 1e6:F0} MB")));
            table.AddRow("all-reduce per token", $"{r.AllReduceMsPerToken:F3} ms");
        }
        AnsiConsole.Write(table);
    }
}
