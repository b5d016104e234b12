namespace Kiln.Bench.Serve;

/// <summary>bench/results/serve-*.json.</summary>
public sealed record ServeReport(
    string Date, string? Commit, int Processors, string Cpu, string LoadBefore, string LoadAfter, string Kiln, string Model, ServeArguments Arguments,
    double FirstStartMs, int Requests, int Mismatches, double LoadSeconds, double TokensPerSecond, double TtftMedianMs, double TtftP99Ms,
    List<DecodeStepTime> InProcessDecodeSteps, DecodeRate SingleStream, DecodeRate Aggregate, double Ratio, CancelResult? Cancels,
    double[] ColdStartsMs, double[] WarmStartsMs, List<string> Failures);
