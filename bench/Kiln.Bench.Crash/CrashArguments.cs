namespace Kiln.Bench.Crash;

/// <summary>
/// --trials N (1000): kill -9 trials; --rounds M (10): 8-process concurrency rounds; --kiln PATH: the
/// kiln.dll to start (default: the Release build); --work DIR: where cache roots go (default: a new
/// temporary folder, deleted at the end); --seed S (1): the seed of the trial plan (kinds, kill times).
/// </summary>
internal sealed record CrashArguments(int Trials, int Rounds, string? Kiln, string? Work, int Seed)
{
    public static CrashArguments Parse(string[] args)
    {
        var result = new CrashArguments(1000, 10, null, null, 1);
        for (var i = 0; i < args.Length; i += 2)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw Usage(args[i]);
            result = args[i] switch
            {
                "--trials" => result with { Trials = Count(args[i], value) },
                "--rounds" => result with { Rounds = Count(args[i], value) },
                "--kiln" => result with { Kiln = Path.GetFullPath(value) },
                "--work" => result with { Work = Path.GetFullPath(value) },
                "--seed" => result with { Seed = Count(args[i], value) },
                _ => throw Usage(args[i]),
            };
        }
        return result;
    }

    // Zero trials or rounds skips that half.
    private static int Count(string option, string value) =>
        int.TryParse(value, out var count) && count >= 0 ? count : throw Usage(option);

    private static ArgumentException Usage(string at) => new(
        $"usage: [--trials N=1000] [--rounds M=10] [--kiln PATH/kiln.dll] [--work DIR] [--seed S=1] (at '{at}')");
}
