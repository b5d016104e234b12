using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Kiln.Tests.Serve;

/// <summary>
/// A real `kiln serve` process on a free port (--port 0; the address is read from its "listening on" line),
/// for the tests that talk to it over HTTP. Disposing sends SIGTERM, as a service manager stops it, and
/// waits for the process to exit.
/// </summary>
public sealed partial class ServeProcess : IDisposable
{
    public const string ApiKey = "test-key-0123";

    private readonly Process process;
    private readonly List<string> stderr = [];
    private readonly TaskCompletionSource<string> listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServeProcess(string[] arguments)
    {
        process = KilnCli.Start(Path.GetTempPath(), new Dictionary<string, string>(), ["serve", "--port", "0", .. arguments]);
        _ = Task.Run(ReadErrors);
        _ = process.StandardOutput.ReadToEndAsync();
        if (!listening.Task.Wait(TimeSpan.FromMinutes(2))) throw new TimeoutException($"kiln serve did not start listening: {Errors}");
        Url = new Uri(listening.Task.Result);
        Http = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromMinutes(2) };
    }

    public Uri Url { get; }

    /// <summary>A client for the server (no API key set: tests add the header they need).</summary>
    public HttpClient Http { get; }

    /// <summary>Completes when the server printed that it serves (the model is loaded).</summary>
    public Task Ready => ready.Task;

    public string Errors
    {
        get { lock (stderr) return string.Join("\n", stderr); }
    }

    public Process Process => process;

    /// <summary>Waits until /health answers 200.</summary>
    public async Task WaitUntilHealthyAsync()
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (process.HasExited) throw new InvalidOperationException($"kiln serve exited ({process.ExitCode}): {Errors}");
            using var response = await Http.GetAsync("/health");
            if (response.IsSuccessStatusCode) return;
            await Task.Delay(50);
        }
        throw new TimeoutException($"/health never answered 200: {Errors}");
    }

    /// <summary>SIGTERM: the way systemd or docker stop a service.</summary>
    public void Terminate()
    {
        if (!process.HasExited) _ = Kill(process.Id, SigTerm);
    }

    public void Dispose()
    {
        Terminate();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60))) process.Kill(entireProcessTree: true);
        Http.Dispose();
        process.Dispose();
    }

    private async Task ReadErrors()
    {
        while (await process.StandardError.ReadLineAsync() is { } line)
        {
            lock (stderr) stderr.Add(line);
            if (ListeningLine().Match(line) is { Success: true } match) listening.TrySetResult(match.Groups[1].Value);
            if (line.StartsWith("kiln: serving ", StringComparison.Ordinal)) ready.TrySetResult();
        }
        listening.TrySetException(new InvalidOperationException($"kiln serve exited: {Errors}"));
        ready.TrySetException(new InvalidOperationException($"kiln serve exited: {Errors}"));
    }

    [GeneratedRegex(@"^kiln: listening on (http://\S+)")]
    private static partial Regex ListeningLine();

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
