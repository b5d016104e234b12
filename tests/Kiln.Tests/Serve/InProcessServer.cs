using System.Text;
using Kiln.Chat;
using Kiln.Runtime;
using Kiln.Server;
using Kiln.Serving;

namespace Kiln.Tests.Serve;

/// <summary>
/// The real server (<see cref="KilnServer"/>: Kestrel on a free loopback port) hosted inside the test
/// process, as an application embeds it, over the default model, for the tests that need to give the
/// engine options a process cannot take (<see cref="EngineOptions.AfterStep"/>). Clients talk to it over
/// real HTTP, as to `kiln serve`. Disposing stops it as SIGTERM would.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private readonly CancellationTokenSource stop = new();
    private readonly LogLines log = new();
    private readonly Task running;

    public InProcessServer(EngineOptions engineOptions)
    {
        running = Task.Run(() => KilnServer.RunAsync(new ServerOptions(Port: 0), engineOptions, LoadDefaultModel, log, stop.Token));
        var listening = Task.WhenAny(log.Listening, running).GetAwaiter().GetResult();
        if (listening != log.Listening) throw new InvalidOperationException($"the server stopped before listening: {running.Exception}\n{log}");
        // No draining of an unread response on dispose: a disposed stream is a client gone at once, as when it disconnects.
        Http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = log.Listening.Result, Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>A client for the server; disposing a response it has not read to the end closes the connection.</summary>
    public HttpClient Http { get; }

    /// <summary>Waits until /health answers 200 (the model is loaded).</summary>
    public async Task WaitUntilHealthyAsync()
    {
        while (true)
        {
            if (running.IsCompleted) throw new InvalidOperationException($"the server stopped: {running.Exception}\n{log}");
            using var response = await Http.GetAsync("/health");
            if (response.IsSuccessStatusCode) return;
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await running;
        Http.Dispose();
        stop.Dispose();
    }

    private static ServedModel LoadDefaultModel()
    {
        var path = TestPaths.DefaultModel;
        var tokenizer = Tokenizer.Load(path);
        var model = LoadedModel.Load(path);
        return new ServedModel("stories260K", model, tokenizer, StopTokens.Of(model.Checkpoint), model.Cache, ChatTemplate.Load(path), null);
    }

    // The server's log: remembered for failure messages; the "listening on" line gives the address.
    private sealed class LogLines : TextWriter
    {
        private const string ListeningPrefix = "kiln: listening on ";
        private readonly StringBuilder lines = new();
        private readonly TaskCompletionSource<Uri> listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Encoding Encoding => Encoding.UTF8;

        public Task<Uri> Listening => listening.Task;

        public override void WriteLine(string? value)
        {
            lock (lines) lines.AppendLine(value);
            if (value is not null && value.StartsWith(ListeningPrefix, StringComparison.Ordinal))
                listening.TrySetResult(new Uri(value[ListeningPrefix.Length..].Split(' ')[0]));
        }

        public override string ToString()
        {
            lock (lines) return lines.ToString();
        }
    }
}
