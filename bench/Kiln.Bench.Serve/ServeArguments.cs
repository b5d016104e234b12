using System.Globalization;

namespace Kiln.Bench.Serve;

/// <summary>The load test's settings (bench/README.md); every loop they drive is bounded in count, and the whole run in time.</summary>
public sealed record ServeArguments(
    string? Kiln, string? Model, string? Work, int Clients, int Requests, int PromptTokens, int MaxTokens, int Slots, int? Threads,
    int Streams, int StreamTokens, int StepRepeats, int CancelRounds, int StartRepeats, int TimeoutSeconds)
{
    public static ServeArguments Parse(string[] args)
    {
        var a = new ServeArguments(null, null, null, Clients: 16, Requests: 2, PromptTokens: 32, MaxTokens: 48, Slots: 16, Threads: null,
            Streams: 8, StreamTokens: 160, StepRepeats: 10, CancelRounds: 0, StartRepeats: 0, TimeoutSeconds: 1800);
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            a = args[i] switch
            {
                "--kiln" => a with { Kiln = Path.GetFullPath(Next()) },
                "--model" => a with { Model = Path.GetFullPath(Next()) },
                "--work" => a with { Work = Path.GetFullPath(Next()) },
                "--clients" => a with { Clients = Int() },
                "--requests" => a with { Requests = Int() },
                "--prompt-tokens" => a with { PromptTokens = Int() },
                "--max-tokens" => a with { MaxTokens = Int() },
                "--slots" => a with { Slots = Int() },
                "--threads" => a with { Threads = Int() },
                "--streams" => a with { Streams = Int() },
                "--stream-tokens" => a with { StreamTokens = Int() },
                "--step-repeats" => a with { StepRepeats = Int() },
                "--cancel-rounds" => a with { CancelRounds = Int() },
                "--start-repeats" => a with { StartRepeats = Int() },
                "--timeout-s" => a with { TimeoutSeconds = Int() },
                _ => throw new ArgumentException($"unknown argument {args[i]} (see bench/README.md: --kiln PATH --model DIR --work DIR --clients N --requests N " +
                    "--prompt-tokens N --max-tokens N --slots N --threads N --streams N --stream-tokens N --step-repeats N --cancel-rounds N --start-repeats N --timeout-s S)"),
            };
        }
        if (a.Clients < 1 || a.Requests < 1 || a.MaxTokens < 2 || a.Streams < 1 || a.StreamTokens < 2 || a.PromptTokens < 1 || a.StepRepeats < 0)
            throw new ArgumentException("counts must be positive (--max-tokens and --stream-tokens at least 2)");
        return a;
    }
}
