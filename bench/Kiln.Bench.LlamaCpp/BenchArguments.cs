namespace Kiln.Bench.LlamaCpp;

/// <summary>--threads N (default 2), --prompt-tokens N (128), --new-tokens N (128), --repeats R (5).</summary>
internal sealed record BenchArguments(int Threads, int PromptTokens, int NewTokens, int Repeats)
{
    public static BenchArguments Parse(string[] args)
    {
        var values = new Dictionary<string, int> { ["--threads"] = 2, ["--prompt-tokens"] = 128, ["--new-tokens"] = 128, ["--repeats"] = 5 };
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!values.ContainsKey(args[i]) || i + 1 >= args.Length || !int.TryParse(args[i + 1], out var value) || value < 1)
                throw new ArgumentException($"usage: [--threads N] [--prompt-tokens N] [--new-tokens N] [--repeats R] (at '{args[i]}')");
            values[args[i]] = value;
        }
        return new BenchArguments(values["--threads"], values["--prompt-tokens"], values["--new-tokens"], values["--repeats"]);
    }
}
