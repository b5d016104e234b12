using System.CommandLine;
using System.Text.Json;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Transforms;

namespace Kiln.Cli.Commands;

/// <summary>`kiln generate`: text from a prompt, streamed to stdout as it is produced.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Text to continue (encoded with the model's tokenizer.json, or a GGUF file's tokenizer)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Token ids to continue, e.g. \"1 403 407\" (no tokenizer needed)." };
        var maxNewTokens = new Option<int>("--max-new-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "0 picks the most likely token (greedy); higher is more random.", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample from the k most likely tokens (0: all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Sample from the smallest set of tokens whose probability reaches p.", DefaultValueFactory = _ => 1f };
        var seed = new Option<int?>("--seed") { Description = "Random seed for sampling; the same seed gives the same text." };
        var json = CommonOptions.Json("prompt_ids, new_ids, text and timings");

        var command = new Command("generate", "Generate text with a model.")
        {
            model, prompt, promptIds, maxNewTokens, temperature, topK, topP, seed, json, CommonOptions.Context, CommonOptions.Threads, TensorParallel.Degree, CommonOptions.Pipeline, CommonOptions.Set, CommonOptions.Quantize,
        };
        CacheOptions.AddTo(command);
        command.SetKilnAction(p =>
        {
            var (text, ids) = (p.GetValue(prompt), p.GetValue(promptIds));
            if ((text is null) == (ids is null)) throw new KilnException("give exactly one of --prompt and --prompt-ids");
            if (p.GetValue(maxNewTokens) < 0) throw new KilnException("--max-new-tokens: must not be negative");
            var sampling = new SamplingOptions(p.GetValue(temperature), p.GetValue(topK), p.GetValue(topP), p.GetValue(seed));
            sampling.Validate();

            var modelPath = p.GetValue(model)!;
            if (text is not null) Tokenizer.EnsurePresent(modelPath);
            var context = p.GetValue(CommonOptions.Context);
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), CommonOptions.Sets(p));
            var cache = CacheOptions.Cache(p);
            // The tokenizer loads while the weights are bound and the session made (it starts once the graph is compiled).
            using var tokenizerLoad = new TokenizerLoad(modelPath, cache);
            var wantTokenizer = text is not null || !p.GetValue(json);
            using var loaded = QuantizeProgressBar.Around(progress => LoadedModel.Load(modelPath,
                new SessionSettings(IntraOpThreads: TensorParallel.Threads(p.GetValue(CommonOptions.Threads)), Context: context, ContextSource: "--context"), pipeline,
                cache, progress, TensorParallel.World, afterCompile: report => { if (wantTokenizer) tokenizerLoad.Start(report); }));
            CacheOptions.Report(loaded.Cache);
            CacheOptions.Report(loaded.WeightsCache);
            using var tokenizer = wantTokenizer ? tokenizerLoad.Finish() : null;
            CacheOptions.Report(tokenizerLoad.Tier?.Report);
            var tokenizerMs = tokenizerLoad.Milliseconds;
            CommonOptions.NoteContext(context, loaded.Context, loaded.MaxPositions);
            var promptTokens = text is not null ? tokenizer!.Encode(text) : CommonOptions.ParseIds(ids!, "--prompt-ids");

            var options = new GenerationOptions(p.GetValue(maxNewTokens), sampling, StopTokens.Of(loaded.Checkpoint));
            var generator = new Generator(loaded);
            if (p.GetValue(json))
            {
                var result = generator.Generate(promptTokens, options);
                var output = new GenerateOutput(result.PromptIds, result.NewIds, tokenizer?.Decode(result.NewIds), result.StopReason,
                    new GenerateTimings(loaded.Timings.TotalMs, loaded.Timings.PipelineMs, loaded.Timings.WeightsMs, loaded.Timings.SessionMs,
                        tokenizerMs, result.FirstTokenMs, result.TotalMs, result.DecodeTokensPerSecond),
                    System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64);
                Console.WriteLine(JsonSerializer.Serialize(output, CliJsonContext.Default.GenerateOutput));
                return 0;
            }

            var streamed = Stream(generator, tokenizer, promptTokens, text, options);
            Console.Error.WriteLine($"[{streamed.NewIds.Length} tokens, stop: {streamed.StopReason}, first token {streamed.FirstTokenMs:F0} ms, " +
                $"{streamed.DecodeTokensPerSecond:F1} tokens/s]");
            return 0;
        });
        return command;
    }

    // Prints the prompt, then each piece of text as soon as it is complete.
    private static GenerationResult Stream(Generator generator, Tokenizer? tokenizer, int[] promptTokens, string? promptText, GenerationOptions options)
    {
        if (tokenizer is null)
        {
            var raw = generator.Generate(promptTokens, options, id => Console.Write($"{id} "));
            Console.WriteLine();
            return raw;
        }
        Console.Write(promptText ?? tokenizer.Decode(promptTokens));
        var decoder = new StreamingDecoder(tokenizer, promptTokens);
        var result = generator.Generate(promptTokens, options, id => Console.Write(decoder.Push(id)));
        Console.WriteLine(decoder.Flush());
        return result;
    }
}

/// <summary>`generate --json`; <paramref name="PeakRssBytes"/> is the process's peak resident memory so far.</summary>
public sealed record GenerateOutput(int[] PromptIds, int[] NewIds, string? Text, string StopReason, GenerateTimings Timings, long PeakRssBytes);

/// <summary>
/// Load (= pipeline + weights + session: the model's start before the first token), the tokenizer's load
/// (through the cache's tokenizer tier, on its own thread while the weights and session are made) and
/// generation, in milliseconds.
/// </summary>
public sealed record GenerateTimings(double LoadMs, double PipelineMs, double WeightsMs, double SessionMs, double TokenizerMs,
    double FirstTokenMs, double GenerateMs, double DecodeTokensPerSecond);
