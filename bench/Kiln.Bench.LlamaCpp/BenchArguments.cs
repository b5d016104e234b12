namespace Kiln.Bench.LlamaCpp;

/// <summary>
/// --threads N (default 2), --prompt-tokens N (128), --new-tokens N (128), --repeats R (5), --spinning on|off
/// (Kiln's ORT intra-op spinning; default off, Kiln's default).
/// </summary>
internal sealed record BenchArguments(int Threads, int PromptTokens, int NewTokens, int Repeats, bool Spinning)
{
    private const string Usage = "usage: [--threads N] [--prompt-tokens N] [--new-tokens N] [--repeats R] [--spinning on|off]";

    public static BenchArguments Parse(string[] args)
    {
        var values = new Dictionary<string, int> { ["--threads"] = 2, ["--prompt-tokens"] = 128, ["--new-tokens"] = 128, ["--repeats"] = 5 };
        var spinning = false;
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length) throw new ArgumentException($"{Usage} (at '{args[i]}')");
            if (args[i] == "--spinning" && args[i + 1] is "on" or "off")
            {
                spinning = args[i + 1] == "on";
                continue;
            }
            if (!values.ContainsKey(args[i]) || !int.TryParse(args[i + 1], out var value) || value < 1)
                throw new ArgumentException($"{Usage} (at '{args[i]}')");
            values[args[i]] = value;
        }
        return new BenchArguments(values["--threads"], values["--prompt-tokens"], values["--new-tokens"], values["--repeats"], spinning);
    }
}
