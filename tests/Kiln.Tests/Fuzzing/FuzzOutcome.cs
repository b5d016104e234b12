namespace Kiln.Tests.Fuzzing;

/// <summary>The contract every fuzz case checks: the reader succeeds, or throws a one-line KilnException naming the file.</summary>
public static class FuzzOutcome
{
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
}
