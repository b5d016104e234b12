namespace Kiln.Tests.Serve;

/// <summary>One `kiln serve` of the default model, with an API key and 4 slots, shared by a test class.</summary>
public sealed class SharedServer : IAsyncLifetime
{
    public ServeProcess Server { get; } = new(["--api-key", ServeProcess.ApiKey, "--slots", "4", "--threads", "1"]);

    public Task InitializeAsync() => Server.WaitUntilHealthyAsync();

    public Task DisposeAsync()
    {
        Server.Dispose();
        return Task.CompletedTask;
    }
}
