namespace Kiln.Bench.Cache;

/// <summary>
/// --repeats R (5): timed runs per in-process measurement; --process-repeats R (7): per whole-process
/// measurement; --models 8B,70B; --kiln PATH: the kiln.dll to start (default: the Release build);
/// --work DIR: where checkpoints and caches go (default: a new temporary folder, deleted at the end);
/// --max-positions N: the checkpoints' max_position_embeddings (default: Llama 3.1's 131072), which
/// sizes the RoPE cos/sin tables fuse_rotary_embedding computes and every entry stores.
/// </summary>
internal sealed record BenchArguments(int Repeats, int ProcessRepeats, IReadOnlyList<string> Models, string? Kiln, string? Work, int? MaxPositions)
{
    public static BenchArguments Parse(string[] args)
    {
        var result = new BenchArguments(5, 7, ["8B", "70B"], null, null, null);
        for (var i = 0; i < args.Length; i += 2)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw Usage(args[i]);
            result = args[i] switch
            {
                "--repeats" => result with { Repeats = Count(args[i], value) },
                "--process-repeats" => result with { ProcessRepeats = Count(args[i], value) },
                "--models" => result with { Models = value.Split(',').Select(m => m.ToUpperInvariant() is "8B" or "70B" ? m.ToUpperInvariant() : throw Usage(m)).ToList() },
                "--kiln" => result with { Kiln = Path.GetFullPath(value) },
                "--work" => result with { Work = Path.GetFullPath(value) },
                "--max-positions" => result with { MaxPositions = Count(args[i], value) },
                _ => throw Usage(args[i]),
            };
        }
        return result;
    }

    private static int Count(string option, string value) =>
        int.TryParse(value, out var count) && count >= 1 ? count : throw Usage(option);

    private static ArgumentException Usage(string at) => new(
        $"usage: [--repeats R=5] [--process-repeats R=7] [--models 8B,70B] [--kiln PATH/kiln.dll] [--work DIR] [--max-positions N] (at '{at}')");
}
