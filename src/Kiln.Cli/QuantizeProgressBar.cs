using System.Diagnostics;
using Kiln.Weights;
using Spectre.Console;

namespace Kiln.Cli;

/// <summary>
/// A progress bar on stderr for quantizing weights while a model loads: drawn only on a terminal, and
/// only once quantizing has taken half a second, so quick loads and piped output stay as they were.
/// </summary>
public static class QuantizeProgressBar
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(500);

    /// <summary>Runs <paramref name="load"/> with a progress sink to hand to the library (null when no bar can be drawn).</summary>
    public static T Around<T>(Func<IProgress<QuantizeProgress>?, T> load)
    {
        if (Console.IsErrorRedirected) return load(null);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress().AutoClear(true).HideCompleted(true).Start(context =>
        {
            var gate = new Lock();
            ProgressTask? task = null;
            Stopwatch? clock = null;
            result = load(new Sink(report =>
            {
                lock (gate)
                {
                    clock ??= Stopwatch.StartNew();
                    if (task is null && clock.Elapsed < Delay) return;
                    task ??= context.AddTask("quantizing weights", maxValue: report.Total);
                    task.Value = report.Done;
                }
            }));
        });
        return result;
    }

    // Reports arrive on the quantizing threads; Progress<T> would post them elsewhere and late.
    private sealed class Sink(Action<QuantizeProgress> report) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => report(value);
    }
}
