namespace Kiln.Bench.Crash;

/// <summary>What a trial's run starts on: no root at all, or a root holding only the first snapshot point (the run restores it and saves the final point), or that plus a staging folder a dead process left.</summary>
internal enum RootState { Empty, FirstPointOnly, FirstPointAndLeftover }

/// <summary>The counts of the kill trials; the three that must be 0 are PartialEntriesVisible, ChangedOutputs and FailedRuns.</summary>
internal sealed record KillSummary(
    int Trials,
    int Killed,
    int FinishedBeforeKill,
    int KilledInsideSave,
    int KilledAtSaveStep,
    int PartialEntriesVisible,
    int ChangedOutputs,
    int FailedRuns,
    int CheckHits,
    int CheckMisses,
    SortedDictionary<string, int> CheckMissReasons,
    IReadOnlyList<Timeline> Timelines,
    IReadOnlyList<string> Failures);

/// <summary>
/// kill -9 trials: each starts `kiln compile` or `kiln generate -n 1` on a fresh or partly filled root
/// and SIGKILLs it. Half the trials kill at a time drawn uniformly over the measured duration of an
/// uncached run of that kind, or (every other draw) over that run's measured save window; the other half
/// kill the moment the run reports a save step drawn from those an uncached run reports (its own
/// progress, --cache-progress). Then it checks that no partial entry is visible and that the next run
/// on the root exits 0 with a hit or a clean miss and the reference tokens.
/// </summary>
internal static class KillTrials
{
    /// <summary>Trials between two measurements of the timelines.</summary>
    public const int RemeasureEvery = 100;

    public static KillSummary Run(KilnRunner kiln, string work, int trials, string reference, Random random, Action<string> progress)
    {
        var template = new CacheRoot(Path.Combine(work, "template"));
        var primed = kiln.Run(KilnRunner.Check, template.Root);
        if (!primed.Clean || primed.NewIds != reference) throw new InvalidOperationException($"priming the template root failed: {primed.Describe()}");
        Directory.Delete(template.FinalEntry()!, recursive: true);

        string[][] kinds = [KilnRunner.Compile, KilnRunner.Generate];
        var timelines = new Dictionary<int, Timeline>();
        var measured = new List<Timeline>();

        var (killed, finished, insideSave, atStep, partial, changed, failed, hits, misses) = (0, 0, 0, 0, 0, 0, 0, 0, 0);
        var reasons = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        for (var trial = 0; trial < trials; trial++)
        {
            // The machine's load drifts (other processes, CI neighbours): the timelines are measured again now and then.
            if (trial % RemeasureEvery == 0) MeasureTimelines(kiln, kinds, work, timelines, measured, progress);
            var kind = random.Next(kinds.Length);
            var byStep = random.Next(2) == 0;
            var state = (RootState)random.Next(3);
            var timeline = timelines[kind];
            var (killAtMs, killAtStep) = (KillTime(timeline, random), random.Next(Math.Max(1, timeline.SaveSteps)));
            var cache = new CacheRoot(Path.Combine(work, $"trial-{trial}"));
            Prepare(cache, template, state);
            var before = cache.Leftovers().ToHashSet(StringComparer.Ordinal);

            var running = kiln.Start(kinds[kind], cache.Root, saveProgress: byStep);
            bool wasKilled;
            if (byStep) wasKilled = running.KillAtSaveStep(killAtStep);
            else
            {
                while (running.ElapsedMs < killAtMs && !running.HasExited) Thread.Sleep(1);
                wasKilled = running.Kill();
            }
            running.Wait();
            var when = byStep ? $"kill at save step {killAtStep}" : $"kill at {killAtMs:F0} ms";
            var what = $"trial {trial} ({string.Join(' ', kinds[kind])}, {state}, {when})";
            if (wasKilled)
            {
                killed++;
                if (byStep) atStep++;
                // A staging folder this run made and did not publish or remove: the kill landed inside a save.
                if (cache.Leftovers().Any(l => !before.Contains(l))) insideSave++;
            }
            else finished++;

            var visible = cache.PartialEntries();
            partial += visible.Count;
            failures.AddRange(visible.Select(v => $"{what}: partial entry visible after the kill: {v}"));

            var check = kiln.Run(KilnRunner.Check, cache.Root);
            if (!check.Clean) { failed++; failures.Add($"{what}: the next run: {check.Describe()}"); }
            else if (check.NewIds != reference) { changed++; failures.Add($"{what}: the next run gave {check.NewIds}, not {reference}"); }
            if (check.Hit) hits++;
            if (check.MissReason is { } reason) { misses++; reasons[reason] = reasons.GetValueOrDefault(reason) + 1; }
            var after = cache.PartialEntries();
            partial += after.Count;
            failures.AddRange(after.Select(v => $"{what}: partial entry visible after the next run: {v}"));

            Directory.Delete(cache.Root, recursive: true);
            if ((trial + 1) % 50 == 0 || trial + 1 == trials)
                progress($"trial {trial + 1}/{trials}: killed {killed} ({insideSave} inside a save), partial {partial}, changed {changed}, failed {failed}");
        }
        return new KillSummary(trials, killed, finished, insideSave, atStep, partial, changed, failed, hits, misses, reasons,
            measured, failures);
    }

    private static void MeasureTimelines(KilnRunner kiln, string[][] kinds, string work,
        Dictionary<int, Timeline> timelines, List<Timeline> measured, Action<string> progress)
    {
        foreach (var kind in Enumerable.Range(0, kinds.Length))
        {
            measured.Add(timelines[kind] = Timeline.Measure(kiln, kinds[kind], work));
            progress($"timeline: {measured[^1]}");
        }
    }

    // Half the kills anywhere in the run (startup, compile, save, generate), half inside its measured save window.
    private static double KillTime(Timeline timeline, Random random) =>
        random.Next(2) == 0 || timeline.SaveStartMs is not { } start || timeline.SaveEndMs is not { } end || end <= start
            ? random.NextDouble() * timeline.RunMs
            : start + random.NextDouble() * (end - start);

    private static void Prepare(CacheRoot cache, CacheRoot template, RootState state)
    {
        if (state == RootState.Empty) return;
        template.CopyTo(cache.Root);
        if (state == RootState.FirstPointAndLeftover)
        {
            // Named as SnapshotStore names staging folders, for a process id no process has (above pid_max).
            var staging = Path.Combine(cache.Root, "pipeline", $".staging-0000000000000000-2147483600-{Guid.NewGuid():N}");
            CacheRoot.CreatePrivateDirectory(staging);
            CacheRoot.CreatePrivateDirectory(Path.Combine(staging, "rank_0"));
            CacheRoot.WritePrivateFile(Path.Combine(staging, "rank_0", "graph.json"), "{\"half written"u8.ToArray());
        }
    }
}
