namespace Kiln.Tests.Fuzzing;

/// <summary>The contract every fuzz case checks: the reader succeeds, or throws a one-line KilnException naming the file.</summary>
public static class FuzzOutcome
{
    /// <summary>
    /// A fuzz test's case count: <paramref name="cases"/> in CI, times KILN_FUZZ_SCALE when set
    /// (e.g. KILN_FUZZ_SCALE=20 for a longer round).
    /// </summary>
    public static int Scaled(int cases) =>
        int.TryParse(Environment.GetEnvironmentVariable("KILN_FUZZ_SCALE"), out var scale) && scale > 0 ? cases * scale : cases;

    /// <summary>Runs <paramref name="read"/>; true when it succeeded, false for an accepted refusal; anything else fails the test.</summary>
    public static bool AcceptedOrRefused(Action read, string fileName, string input)
    {
        try
        {
            read();
            return true;
        }
        catch (KilnException e)
        {
            Assert.True(!e.Message.Contains('\n') && !e.Message.Contains('\r'), $"multi-line message for {input}:\n{e.Message}");
            Assert.True(e.Message.Contains(fileName), $"message does not name {fileName} for {input}: {e.Message}");
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{e.GetType().Name} escaped for {input}: {e}");
            return false;
        }
    }

    /// <summary>
    /// Runs `kiln generate` (two tokens, no cache) on a mutated checkpoint: exit 0, or exit 2 with one error line; nothing else.
    /// </summary>
    public static void GenerateExitsCleanly(string model, string input, params string[] prompt)
    {
        // A hang fails in KilnCli (its run ends after minutes).
        var result = KilnCli.Run(["generate", "--model", model, .. prompt.Length == 0 ? ["--prompt-ids", "1"] : prompt, "--max-new-tokens", "2", "--no-cache"]);
        Assert.True(result.ExitCode is 0 or 2, $"{input}: exit {result.ExitCode}\n{result.Stderr}");
        if (result.ExitCode == 2)
        {
            var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("kiln: cache ")).ToArray();
            Assert.True(lines.Length == 1 && lines[0].StartsWith("kiln: error: "), $"{input}: expected one error line, got:\n{result.Stderr}");
        }
    }
}
