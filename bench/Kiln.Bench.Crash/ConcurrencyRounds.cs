namespace Kiln.Bench.Crash;

/// <summary>One round: how many of the processes compiled (a miss that published), restored (a hit), or neither.</summary>
internal sealed record RoundResult(int Compiled, int Restored, int Other, int ChangedOutputs, int FailedRuns, int PartialEntries);

/// <summary>The rounds' counts; every round must have exactly one compile and the rest hits, all with the reference tokens.</summary>
internal sealed record ConcurrencySummary(int Rounds, int Processes, int RoundsCompilingOnce, int ChangedOutputs, int FailedRuns, int PartialEntriesVisible,
    IReadOnlyList<RoundResult> Results, IReadOnlyList<string> Failures);

/// <summary>
/// Rounds of <see cref="Processes"/> `kiln generate` processes started at once on an empty root: the
/// compile lock must let exactly one compile and publish (one key per snapshot point, all saved by that
/// process) while the others wait and restore.
/// </summary>
internal static class ConcurrencyRounds
{
    public const int Processes = 8;

    public static ConcurrencySummary Run(KilnRunner kiln, string work, int rounds, string reference, Action<string> progress)
    {
        var results = new List<RoundResult>();
        var failures = new List<string>();
        for (var round = 0; round < rounds; round++)
        {
            var cache = new CacheRoot(Path.Combine(work, $"round-{round}"));
            var running = Enumerable.Range(0, Processes).Select(_ => kiln.Start(KilnRunner.Check, cache.Root)).ToList();
            var runs = running.Select(r => r.Wait()).ToList();
            var failed = runs.Where(r => !r.Clean).ToList();
            var changed = runs.Where(r => r.Clean && r.NewIds != reference).ToList();
            var partial = cache.PartialEntries();
            var result = new RoundResult(runs.Count(r => r.Clean && r.Compiled), runs.Count(r => r.Clean && r.Hit), runs.Count(r => !r.Clean || !(r.Compiled || r.Hit)),
                changed.Count, failed.Count, partial.Count);
            results.Add(result);
            failures.AddRange(failed.Select(r => $"round {round}: {r.Describe()}"));
            failures.AddRange(changed.Select(r => $"round {round}: gave {r.NewIds}, not {reference}"));
            failures.AddRange(partial.Select(p => $"round {round}: partial entry visible: {p}"));
            if (result.Compiled != 1 || result.Restored != Processes - 1)
                failures.Add($"round {round}: {result.Compiled} compiled, {result.Restored} restored, {result.Other} neither; cache lines: " +
                    string.Join(" | ", runs.Select(r => r.CacheLine)));
            Directory.Delete(cache.Root, recursive: true);
            progress($"round {round + 1}/{rounds}: {result.Compiled} compiled, {result.Restored} restored, {result.Other} other");
        }
        return new ConcurrencySummary(rounds, Processes, results.Count(r => r.Compiled == 1 && r.Restored == Processes - 1),
            results.Sum(r => r.ChangedOutputs), results.Sum(r => r.FailedRuns), results.Sum(r => r.PartialEntries), results, failures);
    }
}
