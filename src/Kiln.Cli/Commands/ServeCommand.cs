using System.CommandLine;
using Kiln.Cache;
using Kiln.Chat;
using Kiln.Compile;
using Kiln.Runtime;
using Kiln.Server;
using Kiln.Serving;
using Kiln.Transforms;

namespace Kiln.Cli.Commands;

/// <summary>`kiln serve`: an OpenAI-compatible HTTP server over one model, with continuous batching (docs/serve.md).</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var host = new Option<string>("--host") { Description = "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port, printed at start).", DefaultValueFactory = _ => 8000 };
        var slots = new Option<int>("--slots") { Description = "Sequences decoded together; each holds a key/value cache of the context.", DefaultValueFactory = _ => 8 };
        var maxWaiting = new Option<int>("--max-waiting") { Description = "Requests that may wait for a slot; more are answered 429.", DefaultValueFactory = _ => 64 };
        var prefillChunk = new Option<int>("--prefill-chunk") { Description = "Most prompt tokens run between two decode steps.", DefaultValueFactory = _ => 256 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require \"Authorization: Bearer KEY\" on /v1/ requests (default: $KILN_API_KEY, else none)." };
        var name = new Option<string?>("--served-model-name") { Description = "The model's name in the API (default: the model folder's name)." };

        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API.")
        {
            model, host, port, slots, maxWaiting, prefillChunk, apiKey, name, CommonOptions.Context, CommonOptions.Threads, TensorParallel.Degree,
            CommonOptions.Pipeline, CommonOptions.Set, CommonOptions.Quantize,
        };
        CacheOptions.AddTo(command);
        command.SetKilnAction(p =>
        {
            if (TensorParallel.World.Size > 1 || p.GetValue(TensorParallel.Degree) is > 1)
                throw new KilnException("--tp: serve runs the model in one process; leave --tp out (or give --tp 1)");
            if (p.GetValue(port) is < 0 or > 65535) throw new KilnException($"--port: must be between 0 and 65535, got {p.GetValue(port)}");
            var key = p.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("KILN_API_KEY");
            if (key is { Length: 0 }) throw new KilnException("--api-key: the key is empty");
            var engineOptions = new EngineOptions(p.GetValue(slots), p.GetValue(maxWaiting), p.GetValue(prefillChunk));
            engineOptions.Validate();
            var modelPath = p.GetValue(model)!;
            var context = p.GetValue(CommonOptions.Context);
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), CommonOptions.Sets(p));
            var cache = new PipelineCache(CacheOptions.Settings(p), TensorParallel.World);

            ServedModel Load()
            {
                Tokenizer.EnsurePresent(modelPath);
                // The tokenizer loads while the weights are bound and the session made.
                using var tokenizerLoad = new TokenizerLoad(modelPath, cache);
                var loaded = LoadedModel.Load(modelPath, new SessionSettings(IntraOpThreads: p.GetValue(CommonOptions.Threads), Context: context, ContextSource: "--context"),
                    pipeline, cache, afterCompile: tokenizerLoad.Start);
                Tokenizer? tokenizer = null;
                try
                {
                    CacheOptions.Report(loaded.Cache);
                    CacheOptions.Report(loaded.WeightsCache);
                    CommonOptions.NoteContext(context, loaded.Context, loaded.MaxPositions);
                    tokenizer = tokenizerLoad.Finish()!;
                    CacheOptions.Report(tokenizerLoad.Tier?.Report);
                    var id = p.GetValue(name) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelPath)));
                    var (template, problem) = ChatTemplateOf(modelPath);
                    return new ServedModel(id, loaded, tokenizer, StopTokens.Of(loaded.Checkpoint), loaded.Cache, template, problem);
                }
                catch
                {
                    tokenizer?.Dispose();
                    loaded.Dispose();
                    throw;
                }
            }

            var options = new ServerOptions(p.GetValue(host)!, p.GetValue(port), key);
            KilnServer.RunAsync(options, engineOptions, Load, Console.Error).GetAwaiter().GetResult();
            return 0;
        });
        return command;
    }

    // A model without a chat template (or with one that does not parse) still serves completions.
    private static (ChatTemplate? Template, string? Problem) ChatTemplateOf(string modelPath)
    {
        try
        {
            return (ChatTemplate.Load(modelPath), null);
        }
        catch (KilnException e)
        {
            return (null, e.Message);
        }
    }
}
