namespace Kiln.Bench.Serve;

/// <summary>The disconnect rounds: slots must be free after them and resident memory flat.</summary>
public sealed record CancelResult(int Rounds, double SlotsInUseAfter, double FreedMs, double RssBefore, double RssAfter, double CancelledTotal);

/// <summary>bench/results/serve-*.json.</summary>
public sealed record ServeReport(
    string Date, string? Commit, int Processors, string Cpu, string LoadBefore, string LoadAfter, string Kiln, string Model, ServeArguments Arguments,
    double FirstStartMs, int Requests, int Mismatches, double LoadSeconds, double TokensPerSecond, double TtftMedianMs, double TtftP99Ms,
    double SingleStreamTokensPerSecond, double AggregateTokensPerSecond, double Ratio, CancelResult? Cancels,
    double[] ColdStartsMs, double[] WarmStartsMs, List<string> Failures);
