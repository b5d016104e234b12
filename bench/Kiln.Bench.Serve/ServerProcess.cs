using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Kiln.Bench.Serve;

/// <summary>A `kiln serve` on a free loopback port (--port 0), its start timed to /health 200; stopped with SIGTERM.</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process process;
    private readonly List<string> errors = [];

    public ServerProcess(string kiln, IEnumerable<string> arguments)
    {
        var clock = Stopwatch.StartNew();
        var start = kiln.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet") { ArgumentList = { kiln } } : new ProcessStartInfo(kiln);
        foreach (var argument in (string[])["serve", "--host", "127.0.0.1", "--port", "0", .. arguments]) start.ArgumentList.Add(argument);
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        string? url = null;
        while (url is null && process.StandardError.ReadLine() is { } line)
        {
            errors.Add(line);
            const string listening = "kiln: listening on ";
            if (line.StartsWith(listening, StringComparison.Ordinal)) url = line[listening.Length..].Split(' ')[0];
        }
        _ = Task.Run(() => { while (process.StandardError.ReadLine() is { } line) lock (errors) errors.Add(line); });
        Url = new Uri(url ?? throw new InvalidOperationException($"kiln serve did not start: {Errors}"));
        // No draining of an unread response on dispose (by default up to 2 s): a dropped stream closes its connection at once.
        Http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = Url, Timeout = TimeSpan.FromMinutes(10) };
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"kiln serve exited ({process.ExitCode}): {Errors}");
            try
            {
                using var health = Http.GetAsync("/health").GetAwaiter().GetResult();
                if (health.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException) { }
            if (clock.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"kiln serve not ready after 10 minutes: {Errors}");
            Thread.Sleep(20);
        }
        ReadyMs = clock.Elapsed.TotalMilliseconds;
    }

    public Uri Url { get; }
    public HttpClient Http { get; }

    /// <summary>From starting the process to /health answering 200.</summary>
    public double ReadyMs { get; }

    public string Errors
    {
        get { lock (errors) return string.Join(" | ", errors); }
    }

    /// <summary>One metric's value from /metrics (a line "NAME VALUE").</summary>
    public double Metric(string name) => MetricAsync(name, CancellationToken.None).GetAwaiter().GetResult();

    public async Task<double> MetricAsync(string name, CancellationToken cancel) => Value(await Http.GetStringAsync("/metrics", cancel), name);

    /// <summary>Several metrics read from one scrape, so that they describe the same moment.</summary>
    public async Task<double[]> MetricsAsync(string[] names, CancellationToken cancel)
    {
        var text = await Http.GetStringAsync("/metrics", cancel);
        return [.. names.Select(name => Value(text, name))];
    }

    private static double Value(string metrics, string name)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return line is null ? double.NaN : double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private bool disposed;

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (!process.HasExited) _ = Kill(process.Id, 15);
        if (!process.WaitForExit(TimeSpan.FromSeconds(60))) process.Kill(entireProcessTree: true);
        Http.Dispose();
        process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
