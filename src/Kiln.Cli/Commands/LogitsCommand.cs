using System.CommandLine;
using System.Text.Json;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Cli.Commands;

/// <summary>`kiln logits`: the model's raw output for a sequence of token ids.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var ids = new Option<string>("--ids") { Description = "Token ids, e.g. \"1 403 407\".", Required = true };
        var json = CommonOptions.Json("last_logits (every vocabulary entry at the last position) and argmax (per position)");
        var command = new Command("logits", "Run the model once and print its logits.") { model, ids, json, CommonOptions.Context, CommonOptions.Threads, TensorParallel.Degree, CommonOptions.Pipeline, CommonOptions.Set, CommonOptions.Quantize };
        CacheOptions.AddTo(command);
        command.SetKilnAction(p =>
        {
            var tokens = CommonOptions.ParseIds(p.GetValue(ids)!, "--ids");
            var context = p.GetValue(CommonOptions.Context);
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), CommonOptions.Sets(p));
            using var loaded = QuantizeProgressBar.Around(progress => LoadedModel.Load(p.GetValue(model)!,
                new(IntraOpThreads: TensorParallel.Threads(p.GetValue(CommonOptions.Threads)), Context: context, ContextSource: "--context"), pipeline,
                CacheOptions.Cache(p), progress, TensorParallel.World));
            CacheOptions.Report(loaded.Cache);
            CacheOptions.Report(loaded.WeightsCache);
            CommonOptions.NoteContext(context, loaded.Context, loaded.MaxPositions);
            loaded.CheckTokens(tokens, "--ids");

            var vocab = loaded.VocabSize;
            var logits = loaded.Forward(tokens.Select(t => (long)t).ToArray(), Enumerable.Range(0, tokens.Length).Select(i => (long)i).ToArray());
            var argmax = Enumerable.Range(0, tokens.Length).Select(i => Sampler.ArgMax(logits.AsSpan(i * vocab, vocab))).ToArray();
            var last = logits.AsSpan((tokens.Length - 1) * vocab, vocab).ToArray();
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new LogitsOutput(last, argmax), CliJsonContext.Default.LogitsOutput));
                return 0;
            }
            Console.WriteLine($"argmax per position: {string.Join(" ", argmax)}");
            Console.WriteLine("top 5 at the last position:");
            foreach (var (id, value) in last.Select((v, i) => (i, v)).OrderByDescending(x => x.v).Take(5))
                Console.WriteLine($"  {id,6}  {value,10:F4}");
            return 0;
        });
        return command;
    }
}

public sealed record LogitsOutput(float[] LastLogits, int[] Argmax);
